"""The shipped example configs validate, with every secret taken from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.config import load
from router.errors import ConfigError

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "config" / "examples").glob("*.yaml"))
SAMPLE_VALUES = {
    "QUEUE_URL": "postgresql://router@127.0.0.1/router",
    "META_PIXEL_ID": "1234567890",
    "PINTEREST_AD_ACCOUNT_ID": "549755885175",
    "SNAP_PIXEL_ID": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "TIKTOK_PIXEL_CODE": "C4ABCDEFGHIJK1234567",
    "REDDIT_PIXEL_ID": "t2_abc123",
    "GOOGLE_ADS_CUSTOMER_ID": "1234567890",
    "GOOGLE_PURCHASE_CONVERSION_ACTION_ID": "111",
    "GOOGLE_LEAD_CONVERSION_ACTION_ID": "222",
    "LINKEDIN_PURCHASE_RULE_ID": "123456",
    "LINKEDIN_LEAD_RULE_ID": "234567",
}


def variables(path: Path) -> set[str]:
    """Every ${NAME} the file reads."""
    return set(re.findall(r"\$\{([A-Z0-9_]+)", path.read_text()))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_valid_with_its_environment(path: Path) -> None:
    """With every variable set, the example loads and enables every destination it lists."""
    env = {name: SAMPLE_VALUES.get(name, f"secret-value-for-{name.lower()}") for name in variables(path)}
    config = load(path, env)
    assert len(config.destinations) == path.read_text().count("\n  - id: ") - len(config.sources)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_names_every_missing_secret(path: Path) -> None:
    """With an empty environment every secret is reported missing, none is written in the file."""
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    missing = {p.message.split()[2] for p in caught.value.problems if "is not set" in p.message}
    assert missing == variables(path)


def test_all_seven_platforms_are_in_the_example() -> None:
    """config/examples/all-platforms.yaml enables each platform once."""
    path = next(p for p in EXAMPLES if p.name == "all-platforms.yaml")
    env = {name: SAMPLE_VALUES.get(name, f"secret-value-for-{name.lower()}") for name in variables(path)}
    types = sorted(d.type for d in load(path, env).destinations)
    assert types == ["google", "linkedin", "meta", "pinterest", "reddit", "snap", "tiktok"]
