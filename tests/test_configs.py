"""The shipped configs resolve from any working directory (avbench.configs)."""

from __future__ import annotations

import pytest
import yaml

from avbench.configs import CONFIG_DIR, resolve_config, shipped


@pytest.mark.parametrize("spelling", [
    "configs/model/ezvsl.yaml", "model/ezvsl.yaml", "avbench/configs/model/ezvsl.yaml",
    "benchmarks/configs/model/ezvsl.yaml"])
def test_every_spelling_finds_the_shipped_file_from_another_directory(tmp_path, monkeypatch,
                                                                      spelling):
    monkeypatch.chdir(tmp_path)
    assert resolve_config(spelling) == CONFIG_DIR / "model" / "ezvsl.yaml"


def test_suites_by_name_and_a_local_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config("synthetic") == CONFIG_DIR / "suites" / "synthetic.yaml"
    assert resolve_config("benchmarks/suites/paper.yaml") == CONFIG_DIR / "suites" / "paper.yaml"
    local = tmp_path / "model" / "ezvsl.yaml"
    local.parent.mkdir()
    local.write_text("model: {}\n")
    assert resolve_config("model/ezvsl.yaml") == local.relative_to(tmp_path)


def test_a_missing_config_names_the_path_and_the_places_searched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="model/nope.yaml.*shipped configs"):
        resolve_config("model/nope.yaml")


def test_every_config_a_shipped_suite_names_is_shipped():
    for name in shipped("suites"):
        suite = CONFIG_DIR / "suites" / f"{name}.yaml"
        raw = yaml.safe_load(suite.read_text())
        named = [raw["trainer"]] if isinstance(raw.get("trainer"), str) else []
        named += [e["config"] for key in ("models", "datasets") for e in raw.get(key, [])
                  if "config" in e]
        named += [b["config"] for b in (raw.get("benchmarks") or {}).values()
                  if isinstance(b, dict) and "config" in b]
        assert named, name
        for path in named:
            assert resolve_config(path, suite).is_file(), (name, path)
