"""The autopilot: the closed loop and the scenarios it is measured on."""
