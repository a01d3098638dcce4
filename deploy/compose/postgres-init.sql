-- One database per Baton service (run once, when the volume is new).
CREATE DATABASE baton_registry OWNER baton;
CREATE DATABASE baton_orchestrator OWNER baton;
CREATE DATABASE baton_sessions OWNER baton;
