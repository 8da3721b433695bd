"""Analytics: forecasting, fault detection and root-cause localisation over telemetry and the twin."""
