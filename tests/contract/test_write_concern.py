"""Every production configuration asks MongoDB for an explicit write concern: majority, journaled.

The services' client (shared/mongo.py) sets no write concern of its own, so it comes from
MONGODB_URL: in compose the URL itself, in the production overlay the options the MongoDB operator
appends to each user's connection string.
"""

from __future__ import annotations

from pymongo import MongoClient

from tests.contract.support import ROOT, SERVICES
from tests.contract.test_compose import REQUIRED_ENV, compose, environment
from tests.contract.test_kubernetes import by_kind

EXPECTED = {"w": "majority", "j": True}


def _write_concern(url: str) -> dict[str, object]:
    client: MongoClient = MongoClient(url, connect=False)
    try:
        return client.write_concern.document
    finally:
        client.close()


def test_the_services_client_takes_no_write_concern_of_its_own():
    """If shared/mongo.py ever sets one, it must say the same as the URLs below."""
    source = (ROOT / "shared" / "mongo.py").read_text()
    assert "WriteConcern" not in source and "journal" not in source and "w=" not in source, (
        "shared/mongo.py sets a write concern: keep it majority + journal, like deploy/ and docs/"
    )


def test_compose_urls_ask_for_majority_journaled_writes():
    for name in SERVICES:
        url = environment(compose()["services"][name], REQUIRED_ENV)["MONGODB_URL"]
        assert _write_concern(url) == EXPECTED, (name, url)


def test_production_connection_strings_ask_for_majority_journaled_writes():
    mongo = by_kind("production", "MongoDBCommunity")["mongodb"]
    options = {key: str(value).lower() for key, value in mongo["spec"]["additionalConnectionStringConfig"].items()}
    # What the operator appends to connectionString.standard, as a driver reads it.
    url = "mongodb://mongodb-0.mongodb-svc:27017/?replicaSet=mongodb&" + "&".join(
        f"{k}={v}" for k, v in options.items()
    )
    assert _write_concern(url) == EXPECTED, url
    for user in mongo["spec"]["users"]:
        assert not user.get("additionalConnectionStringConfig"), f"{user['name']} overrides the write concern"


def test_the_docs_name_the_write_concern():
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "w=majority&journal=true" in operations
