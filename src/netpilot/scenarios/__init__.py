"""The autopilot run against the simulator: scenario files and their runs with a hindsight oracle, generated
suites, the AI-RAN scenarios and the live simulated loop. The one layer where ``autopilot`` meets ``telemetry.sim``
(above both, below ``api`` and ``cli``): no stage below imports the simulator."""
