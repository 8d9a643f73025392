"""Settings precedence and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.exceptions import ConfigError
from nemo_opt.settings import Settings, config_path, load_settings


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


def test_each_layer_beats_the_one_below(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """defaults < ./nemo.toml < NEMO_* (the real environment) < flags, one setting per combination of layers."""
    (tmp_path / "nemo.toml").write_text("optimizers = 2\natol = 1e-5\nextractions = 2\n")  # the cwd (conftest)
    monkeypatch.setenv("NEMO_ATOL", "1e-4")
    monkeypatch.setenv("NEMO_EXTRACTIONS", "3")
    monkeypatch.setenv("NEMO_MEMORY_K", "5")
    settings = load_settings({"extractions": 4, "memory_k": None, "rtol": 1e-3})
    assert settings.repair_rounds == 3  # defaults only
    assert settings.optimizers == 2  # file over default
    assert settings.atol == 1e-4  # environment over file
    assert settings.extractions == 4  # flag over environment and file
    assert settings.memory_k == 5  # a None flag is "not given": the environment stands
    assert settings.rtol == 1e-3  # flag over default
    assert type(settings) is Settings
    assert settings.model_fields_set == {"optimizers", "atol", "extractions", "memory_k", "rtol", "home"}


def test_a_local_model_profile_keeps_what_any_layer_set(tmp_path: Path) -> None:
    config = tmp_path / "nemo.toml"
    config.write_text('model = "local:/models/m.gguf"\nllm_timeout = 60.0\n')
    settings = load_settings(config=config, environ={"NEMO_AGENT_PROTOCOL": "tools"})
    assert settings.agent_protocol == "tools"  # set in the environment: kept
    assert settings.llm_timeout == 60.0  # set in the file: kept
    assert settings.llm_concurrency == 1  # set nowhere: the local-model profile


def test_direct_construction_reads_no_environment_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nemo.toml").write_text('model = "openai:gpt-4.1"\n')
    monkeypatch.setenv("NEMO_OPTIMIZERS", "7")
    monkeypatch.setenv("NEMO_OPTIMISERS", "7")  # a misspelt variable must not break direct construction either
    for settings in (Settings(), Settings.model_validate({}), Settings(home=tmp_path)):
        assert settings.optimizers == 3 and settings.model is None and settings.config_file is None
    resumed = Settings.model_validate({**Settings(atol=1e-3).model_dump(), "repair_rounds": 1})
    assert (resumed.atol, resumed.repair_rounds, resumed.optimizers) == (1e-3, 1, 3)
    monkeypatch.delenv("NEMO_OPTIMISERS")
    loaded = load_settings()  # the same environment and file do reach load_settings
    assert loaded.optimizers == 7 and loaded.model == "openai:gpt-4.1"


def test_config_file_is_the_nemo_toml_that_was_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"NEMO_HOME": str(home)}
    assert load_settings(environ=env).config_file is None and config_path(env) is None
    (home / "nemo.toml").write_text("optimizers = 1\n")
    assert load_settings(environ=env).config_file == home / "nemo.toml" == config_path(env)
    (tmp_path / "nemo.toml").write_text("optimizers = 2\n")  # ./nemo.toml (the cwd) comes before $NEMO_HOME's
    assert load_settings(environ=env).config_file == tmp_path / "nemo.toml"
    named = tmp_path / "other.toml"
    named.write_text("optimizers = 3\n")
    settings = load_settings(environ={**env, "NEMO_CONFIG": str(named)})
    assert (settings.config_file, settings.optimizers) == (named, 3)
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("optimizers = 4\n")
    settings = load_settings(config=explicit, environ={**env, "NEMO_CONFIG": str(named)})
    assert (settings.config_file, settings.optimizers) == (explicit, 4)


def test_unknown_key_in_nemo_toml_names_file_key_and_nearest(tmp_path: Path) -> None:
    (tmp_path / "nemo.toml").write_text("optimisers = 3\nsandbox_timout = 10\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={})  # found as ./nemo.toml, reported by its full path
    message = str(caught.value)
    assert str(tmp_path / "nemo.toml") in message
    assert "'optimisers' (did you mean 'optimizers'?)" in message
    assert "'sandbox_timout' (did you mean 'sandbox_timeout'?)" in message
    (tmp_path / "nemo.toml").write_text("zzzz = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) 'zzzz'\. Valid names: .*optimizers"):
        load_settings(environ={})


def test_unknown_nemo_variable_names_it_and_nearest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEMO_OPTIMISERS", "3")
    with pytest.raises(ConfigError, match=r"'NEMO_OPTIMISERS' \(did you mean 'NEMO_OPTIMIZERS'\?\)"):
        load_settings()
    with pytest.raises(ConfigError, match=r"'NEMO_XYZZY'\. Valid names: .*NEMO_SANDBOX_TIMEOUT"):
        load_settings(environ={"NEMO_XYZZY": "1"})
    # NEMO_* variables that are not settings are not typos.
    others = {"NEMO_API_KEY": "k", "NEMO_SANDBOX_ID": "m", "NEMO_CAPTURE": "c", "NEMO_LIVE_GGUF": "/m.gguf"}
    assert load_settings(environ=others).optimizers == 3


def test_unknown_flag_names_nearest() -> None:
    with pytest.raises(ConfigError, match=r"'repair_round' \(did you mean 'repair_rounds'\?\)"):
        load_settings({"repair_round": 2}, environ={})


def test_bad_values_name_their_layer_and_what_is_expected(tmp_path: Path) -> None:
    config = tmp_path / "nemo.toml"
    config.write_text('sandbox = "docker"\noptimizers = 2\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"atol": -1.0}, config=config, environ={"NEMO_LLM_CACHE": "sometimes"})
    message = str(caught.value)
    assert f"sandbox (from {config}): Input should be 'auto', 'bwrap' or 'plain', got 'docker'" in message
    assert "atol (from command line): Input should be greater than or equal to 0, got -1.0" in message
    assert "llm_cache (from NEMO_LLM_CACHE): Input should be 'auto', 'on' or 'off', got 'sometimes'" in message
    with pytest.raises(ConfigError, match=r"optimizers \(from NEMO_OPTIMIZERS\): .*valid integer.*'two'"):
        load_settings(config=config, environ={"NEMO_OPTIMIZERS": "two", "NEMO_SANDBOX": "plain"})
    with pytest.raises(ConfigError, match=r"mbr_weights\.objective \(from NEMO_MBR_WEIGHTS\): .*valid number"):
        load_settings(environ={"NEMO_MBR_WEIGHTS": '{"objective": "heavy"}'})


def test_bad_json_in_environment_names_variable_and_form() -> None:
    with pytest.raises(ConfigError, match=r"NEMO_MBR_WEIGHTS: expected a JSON object.*got '\{objective: 2\}'"):
        load_settings(environ={"NEMO_MBR_WEIGHTS": "{objective: 2}"})
    with pytest.raises(ConfigError, match=r"NEMO_SOLVERS: expected a JSON list or comma-separated names"):
        load_settings(environ={"NEMO_SOLVERS": '["highs",'})
    settings = load_settings(environ={"NEMO_MBR_WEIGHTS": '{"objective": 2}', "NEMO_SOLVERS": '["highs", "scip"]'})
    assert settings.mbr_weights == {"objective": 2.0} and settings.solvers == ["highs", "scip"]


def test_unreadable_nemo_toml(tmp_path: Path) -> None:
    config = tmp_path / "nemo.toml"
    config.write_bytes(b'model = "\xff"\n')
    with pytest.raises(ConfigError, match=r"Cannot read .*nemo\.toml: 'utf-8' codec"):
        load_settings(config=config, environ={})
    with pytest.raises(ConfigError, match=r"Cannot read .*absent\.toml: it is not a file"):
        load_settings(config=tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match=r"Cannot read .*: it is not a file"):
        load_settings(config=tmp_path, environ={})


def test_none_words_unset_optional_settings_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "nemo.toml"
    config.write_text('max_cost_usd = 5.0\nrun_max_seconds = 60.0\nmodel = "openai:gpt-4.1"\n')
    for word in ("null", "None", "", " NONE "):
        settings = load_settings(
            config=config, environ={"NEMO_MAX_COST_USD": word, "NEMO_RUN_MAX_SECONDS": word, "NEMO_MODEL": word}
        )
        assert (settings.max_cost_usd, settings.run_max_seconds, settings.model) == (None, None, None)
    with pytest.raises(ConfigError, match=r"llm_timeout \(from NEMO_LLM_TIMEOUT\): .*got 'none'"):
        load_settings(environ={"NEMO_LLM_TIMEOUT": "none"})  # not optional: "none" is just a bad number


def test_secrets_stay_out_of_settings(tmp_path: Path) -> None:
    env = {"NEMO_API_KEY": "sk-nemo-secret", "OPENAI_API_KEY": "sk-openai-secret", "NEMO_MODEL": "openai:gpt-4.1"}
    settings = load_settings(environ=env)
    dumped = settings.model_dump_json()
    assert "sk-nemo-secret" not in dumped and "sk-openai-secret" not in dumped
    assert not [name for name in Settings.model_fields if "key" in name]
