"""The names of a namespace's topics (`NAMESPACE.NAME`): the workers, replay and the gateway agree on
them here. tests/test_ingest.py checks streams.config spells them the same."""

DOSSIER_TOPIC, PETITION_TOPIC, CATALOG_TOPIC = "dossier-events", "petition-events", "catalog-events"
DEAD_LETTER_TOPIC = "dead-letter"
# Where an event belongs, by schemas.events.entity_kind: the gateway publishes there and a worker
# reroutes an event found anywhere else, so the two must not disagree.
TOPIC_OF_ENTITY = {"dossier": DOSSIER_TOPIC, "petition": PETITION_TOPIC, "catalogue": CATALOG_TOPIC}
