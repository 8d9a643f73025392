"""Settings precedence and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.exceptions import ConfigError
from nemo_opt.settings import load_settings


def test_precedence_defaults_toml_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "nemo.toml"
    config.write_text('model = "openai:gpt-4.1"\natol = 1e-5\noptimizers = 2\n')
    env = {"NEMO_ATOL": "1e-4", "NEMO_HOME": str(tmp_path / "home")}
    settings = load_settings({"optimizers": 4, "model": None}, config=config, environ=env)
    assert settings.model == "openai:gpt-4.1"  # from the file; a None flag means "not given"
    assert settings.atol == 1e-4  # environment beats the file
    assert settings.optimizers == 4  # flags beat everything
    assert settings.rtol == 1e-6  # default
    assert settings.home == tmp_path / "home"
    assert settings.store_path == tmp_path / "home" / "nemo.db"


def test_nemo_toml_found_in_nemo_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "nemo.toml").write_text("repair_rounds = 5\n")
    settings = load_settings(environ={"NEMO_HOME": str(home)})
    assert settings.repair_rounds == 5


def test_per_stage_model_overrides() -> None:
    settings = load_settings(
        {"model": "openai:gpt-4.1", "extract_model": "openai:o3", "optimizer_model": "anthropic:claude-sonnet-4"},
        environ={},
    )
    assert settings.model_for("extract") == "openai:o3"
    assert settings.model_for("judge") == "openai:o3"
    assert settings.model_for("simulator") == "openai:gpt-4.1"
    assert settings.model_for("optimizer") == "anthropic:claude-sonnet-4"


def test_bad_values_say_where_they_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"atol \(from NEMO_ATOL\)"):
        load_settings(environ={"NEMO_ATOL": "tiny"})
    config = tmp_path / "nemo.toml"
    config.write_text("optimisers = 3\n")
    with pytest.raises(ConfigError, match="unknown setting.*optimisers"):
        load_settings(config=config, environ={})
    config.write_text("model = [")
    with pytest.raises(ConfigError, match="Cannot read"):
        load_settings(config=config, environ={})
    with pytest.raises(ConfigError, match="NEMO_CONFIG points to"):
        load_settings(environ={"NEMO_CONFIG": str(tmp_path / "missing.toml")})


def test_list_setting_from_env() -> None:
    settings = load_settings(environ={"NEMO_SANDBOX_ENV_PASSTHROUGH": "GRB_LICENSE_FILE, LANGUAGE"})
    assert settings.sandbox_env_passthrough == ["GRB_LICENSE_FILE", "LANGUAGE"]
    settings = load_settings(environ={"NEMO_MAX_COST_USD": "none"})
    assert settings.max_cost_usd is None
