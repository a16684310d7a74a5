"""docs/configuration.md documents every setting, as the code has it."""

from __future__ import annotations

import pytest

from shared.settings import CommonSettings
from tests.contract.support import ROOT, SERVICES, settings_env_names
from tools import contracts
from tools.configuration_reference import FIELD_NOTES

REFERENCE = ROOT / "docs" / "configuration.md"


def test_reference_matches_the_settings_classes():
    with contracts.clean_environment(*(contracts.settings_class(s) for s in SERVICES)):
        expected = contracts.configuration_document()
    assert REFERENCE.read_text() == expected, "docs/configuration.md is stale; run scripts/gen-contracts"


@pytest.mark.parametrize("service", SERVICES)
def test_every_environment_variable_is_documented(service):
    text = REFERENCE.read_text()
    missing = sorted(name for name in settings_env_names(service) if f"`{name}`" not in text)
    assert not missing, f"{service}: undocumented settings {missing}"


def test_every_common_setting_has_a_description():
    undocumented = [
        name for name, info in CommonSettings.model_fields.items() if not (info.description or FIELD_NOTES.get(name))
    ]
    assert not undocumented, (
        f"describe these in shared/settings.py or tools/configuration_reference.py FIELD_NOTES: {undocumented}"
    )
