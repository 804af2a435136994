"""What several layers share and none owns: the project's data files (ruleset, calendar), where Kafka
and Redis are (the local stack), and the event simulator as a library. Imports schemas and scoring
only; streams, api, bench, tests and cli import it."""
