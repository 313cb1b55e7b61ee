"""The docs' reference pages are generated from the code: every key and command appears."""

from __future__ import annotations

from pydantic import BaseModel

from edas_agent.cli import app
from edas_agent.cli.reference import cli_reference, config_reference
from edas_agent.config import Config


def test_every_config_key_is_in_the_configuration_reference():
    text = config_reference()

    def check(name: str, section: type[BaseModel]) -> None:
        assert f"### `{name}:`" in text
        for key, sub in section.model_fields.items():
            if _is_section(sub.annotation):  # nested: its own table (search.explore:)
                check(f"{name}.{key}", sub.annotation)
                continue
            assert f"| `{key}` |" in text
            if sub.description:
                assert sub.description.split("\n")[0][:40].replace("|", "\\|") in text

    for name, field in Config.model_fields.items():
        if _is_section(field.annotation):
            check(name, field.annotation)
        else:
            assert f"| `{name}` |" in text
    assert "### `search.explore:`" in text and "### `search.continuous:`" in text


def _is_section(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def test_every_command_and_option_is_in_the_cli_reference():
    text = cli_reference(app)
    for command in ("run", "replay", "evaluate", "gate", "report", "runs", "ensemble", "verify",
                    "calibrate", "export", "tune bagging"):  # fmt: skip
        assert f"## `edas-agent {command}`" in text
    assert "`--budget <int>` | Proposals to evaluate." in text
    assert "`--members <int>`" in text and "`--set <list[str]>` | Override any config key" in text


def test_the_default_configuration_block_loads_back_as_the_defaults(tmp_path):
    import yaml

    from edas_agent.cli.reference import config_yaml
    from edas_agent.config import load_config

    block = config_yaml()
    assert block.startswith("```yaml\n") and "max_train_tflop: null" in block
    path = tmp_path / "defaults.yaml"
    path.write_text(block.removeprefix("```yaml\n").removesuffix("```\n"))
    assert yaml.safe_load(path.read_text())["budget"] == 50
    assert load_config(path, {}) == Config()
