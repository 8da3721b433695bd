"""The operator's assistant: a request in words becomes intents for the change pipeline, a question, a refusal or
an explanation from read-only tools."""
