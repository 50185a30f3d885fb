"""Settings: file < environment < keyword arguments; bad values name the setting and range."""

import pytest

from mlservices.errors import SettingsError, ValidationError
from mlservices.settings import CONFIG_FILE_ENV, Settings, allowed_range


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("MLSERVICES_"):
            monkeypatch.delenv(name)


@pytest.fixture
def toml_file(tmp_path):
    path = tmp_path / "service.toml"
    path.write_text(
        "[mlservices]\nmax_batch_tokens = 4096\nmax_wait_ms = 2.5\ndtype = 'bfloat16'\n"
        "validation_strategy = 'lenient'\n"
    )
    return path


def test_defaults():
    settings = Settings()
    assert settings.device == "auto" and settings.dtype == "float32"
    assert settings.validation_strategy == "strict" and settings.max_batch_tokens == 16384


def test_file_then_env_then_kwargs(toml_file, monkeypatch):
    from_file = Settings(config_file=toml_file)
    assert (from_file.max_batch_tokens, from_file.max_wait_ms) == (4096, 2.5)
    assert from_file.dtype == "bfloat16" and from_file.validation_strategy == "lenient"

    monkeypatch.setenv("MLSERVICES_MAX_BATCH_TOKENS", "2048")
    monkeypatch.setenv("MLSERVICES_ALERT_LATENCY_MS", "150")
    env = Settings(config_file=toml_file)
    assert env.max_batch_tokens == 2048 and env.alert_latency_ms == 150.0
    assert env.max_wait_ms == 2.5  # still from the file

    kwargs = Settings(config_file=toml_file, max_batch_tokens=1024, dtype="float16")
    assert kwargs.max_batch_tokens == 1024 and kwargs.dtype == "float16"
    assert kwargs.alert_latency_ms == 150.0 and kwargs.max_wait_ms == 2.5


def test_yaml_file_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "service.yaml"
    path.write_text("device: cpu\nmemory_limit_mb: 2048\nalert_gpu_utilization: 90\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(path))
    settings = Settings()
    assert settings.device == "cpu" and settings.memory_limit_mb == 2048.0
    assert settings.alert_gpu_utilization == 90.0


def test_env_none_clears_an_optional_value(tmp_path, monkeypatch):
    path = tmp_path / "s.yml"
    path.write_text("memory_limit_mb: 512\n")
    monkeypatch.setenv("MLSERVICES_MEMORY_LIMIT_MB", "none")
    assert Settings(config_file=path).memory_limit_mb is None


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("max_batch_tokens", 8, ">= 16"),
        ("max_batch_texts", 0, ">= 1"),
        ("memory_fraction", 1.5, "<= 1.0"),
        ("max_wait_ms", -1, ">= 0.0"),
        ("alert_gpu_utilization", 101, "<= 100.0"),
        ("dtype", "int4", '"float16"'),
        ("device", "tpu", "cuda"),
        ("validation_strategy", "loose", '"lenient"'),
        ("request_timeout_s", 0, "> 0.0"),
    ],
)
def test_bad_keyword_values(name, value, allowed):
    with pytest.raises(SettingsError) as info:
        Settings(**{name: value})
    err = info.value
    assert isinstance(err, ValidationError)
    assert name in str(err) and allowed in str(err) and repr(value) in str(err)
    assert err.context["setting"] == name and err.context["source"] == "keyword argument"
    assert err.context["allowed"] == allowed_range(name)


def test_bad_env_and_file_values_name_their_source(toml_file, monkeypatch, tmp_path):
    monkeypatch.setenv("MLSERVICES_MAX_BATCH_TEXTS", "many")
    with pytest.raises(SettingsError, match="environment MLSERVICES_MAX_BATCH_TEXTS"):
        Settings()
    monkeypatch.delenv("MLSERVICES_MAX_BATCH_TEXTS")
    bad = tmp_path / "bad.toml"
    bad.write_text("max_wait_ms = -3\n")
    with pytest.raises(SettingsError, match="config file") as info:
        Settings(config_file=bad)
    assert info.value.context["setting"] == "max_wait_ms"


def test_unknown_setting_and_bad_files(tmp_path):
    with pytest.raises(SettingsError, match="unknown setting 'max_tokens'"):
        Settings(max_tokens=5)
    with pytest.raises(SettingsError, match="must be .toml, .yaml or .yml"):
        Settings(config_file=tmp_path / "s.ini")
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings(config_file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("max_wait_ms = = 3\n")
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings(config_file=broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        Settings(config_file=listed)


def test_cross_field_checks():
    with pytest.raises(SettingsError, match="min_batch_tokens=4096 exceeds"):
        Settings(min_batch_tokens=4096, max_batch_tokens=1024)
    with pytest.raises(SettingsError, match="chunk_overlap_tokens") as info:
        Settings(chunk_window_tokens=32, chunk_overlap_tokens=30)
    assert info.value.context["allowed"] == "0..29"


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.max_batch_tokens = 5
