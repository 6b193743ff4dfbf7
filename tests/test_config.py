"""The one config system: YAML (safe), types, choices, unknown keys, precedence of flags over files."""

from __future__ import annotations

import argparse

import pytest

from dcvkit.config import add_config_arguments, from_dict, load_yaml, resolve
from dcvkit.errors import ConfigError
from dcvkit.tasks.classify import ClassifyConfig


def test_unknown_key_names_the_key_and_suggests(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'epocs' \(did you mean 'epochs'\?\)"):
        from_dict(ClassifyConfig, {"epocs": 3}, where="x.yaml")


def test_wrong_type_and_bad_choice():
    with pytest.raises(ConfigError, match="'epochs' must be int"):
        from_dict(ClassifyConfig, {"epochs": "many"})
    with pytest.raises(ConfigError, match="'epochs' must be int"):
        from_dict(ClassifyConfig, {"epochs": 2.5})
    with pytest.raises(ConfigError, match="'scheduler' must be one of"):
        from_dict(ClassifyConfig, {"scheduler": "warp"})
    assert from_dict(ClassifyConfig, {"lr": "0.5", "hflip": "yes", "limit": None}).lr == 0.5


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("epochs: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(evil)
    assert not (tmp_path / "pwned").exists()


def test_yaml_must_be_a_mapping(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_yaml(f)


def test_precedence_defaults_then_file_then_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 7\nlr: 0.3\nmodel: mlp\n")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ClassifyConfig)
    cfg = resolve(ClassifyConfig, parser.parse_args(["--config", str(f), "--lr", "0.01", "--no-hflip"]))
    assert (cfg.epochs, cfg.lr, cfg.model, cfg.batch_size) == (7, 0.01, "mlp", ClassifyConfig().batch_size)


def test_saved_config_round_trips(tmp_path):
    import yaml

    from dcvkit.config import to_dict
    from dcvkit.io import write_yaml

    cfg = ClassifyConfig(epochs=3, model="mlp", limit=100)
    write_yaml(tmp_path / "config.yaml", to_dict(cfg))
    assert from_dict(ClassifyConfig, yaml.safe_load((tmp_path / "config.yaml").read_text())) == cfg
