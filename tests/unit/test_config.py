import subprocess
import sys
from pathlib import Path

import pytest

from blink import config


def load(tmp_path: Path, toml: str = "", env: dict | None = None, flags: dict | None = None):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return config.load(path, env=env or {}, flags=flags or {})


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert s.pair == "BTC-USD" and s.port == 8000 and s.data_dir == Path("data")
    assert s.roles == {"ingest", "api", "train"}
    assert s.mlflow_uri == f"sqlite:///{Path('data').resolve() / 'mlflow.db'}"
    assert s.redis_dsn == ""
    assert s.schema == "public"


def test_precedence_defaults_toml_env_flags(tmp_path):
    toml = 'pair = "ETH-USD"\n[http]\nport = 9001\nhost = "0.0.0.0"\n[model]\nname = "m_toml"\n'
    s = load(tmp_path, toml)
    assert (s.pair, s.port, s.host, s.model_name) == ("ETH-USD", 9001, "0.0.0.0", "m_toml")
    s = load(tmp_path, toml, env={"BLINK_PORT": "9002", "MODEL_NAME": "m_env"})
    assert (s.pair, s.port, s.model_name) == ("ETH-USD", 9002, "m_env")
    s = load(tmp_path, toml, env={"BLINK_PORT": "9002"}, flags={"port": "9003"})
    assert s.port == 9003


def test_seed_environment_names(tmp_path):
    env = {"PAIR": "BTC-EUR", "MODEL_NAME": "x", "MLFLOW_TRACKING_URI": "http://m:5000",
           "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
           "PG_DSN": "postgresql+psycopg2://u:pw@db:5433/blink", "REDIS_HOST": "cache"}
    s = load(tmp_path, env=env)
    assert s.pair == "BTC-EUR" and s.log_level == "DEBUG" and s.log_format == "json"
    assert s.pg_dsn == "postgresql://u:pw@db:5433/blink"
    assert s.redis_dsn == "redis://cache:6379/0"
    assert s.mlflow_uri == "http://m:5000"
    s = load(tmp_path, env={"REDIS_HOST": "cache", "REDIS_PORT": "6380"})
    assert s.redis_dsn == "redis://cache:6380/0"
    s = load(tmp_path, env={"REDIS_HOST": "cache", "REDIS_URL": "redis://other:1/2"})
    assert s.redis_dsn == "redis://other:1/2"


def test_list_and_path_values(tmp_path):
    s = load(tmp_path, env={"BLINK_ALERT_WEBHOOKS": "http://a/x, http://b/y",
                            "BLINK_DATA_DIR": "/tmp/blinkdata"})
    assert s.alert_webhooks == ("http://a/x", "http://b/y")
    assert s.data_dir == Path("/tmp/blinkdata")
    s = load(tmp_path, '[alerts]\nwebhooks = ["http://c/z"]\n')
    assert s.alert_webhooks == ("http://c/z",)


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("bogus = 1\n", {}, "unknown key 'bogus'"),
        ("[http]\nport = 'eighty'\n", {}, "http.port='eighty'"),
        ("", {"BLINK_PORT": "70000"}, "BLINK_PORT=70000"),
        ("", {"BLINK_PORT": "abc"}, "BLINK_PORT='abc'"),
        ("", {"PG_DSN": "mysql://x@y/z"}, "PG_DSN="),
        ("", {"PG_DSN": "postgresql://u@h:notaport/db"}, "bad port"),
        ("", {"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml'"),
        ("", {"BLINK_SOURCE": "kraken"}, "BLINK_SOURCE='kraken'"),
        ("", {"BLINK_ROLE": "api,chef"}, "BLINK_ROLE='api,chef'"),
        ("", {"BLINK_SOURCE": "replay"}, "BLINK_REPLAY"),
        ("", {"BLINK_COINBASE_WS_URL": "http://x"}, "BLINK_COINBASE_WS_URL"),
        ("[http\n", {}, "not valid TOML"),
    ],
)
def test_bad_values_name_key_and_value(tmp_path, toml, env, needle):
    with pytest.raises(config.ConfigError) as e:
        load(tmp_path, toml, env=env)
    assert needle in str(e.value)


def test_password_never_in_dsn_error(tmp_path):
    with pytest.raises(config.ConfigError) as e:
        load(tmp_path, env={"PG_DSN": "mysql://u:hunter22@h/db"})
    assert "hunter22" not in str(e.value)


def _cli(*args, env=None, cwd):
    return subprocess.run([sys.executable, "-m", "blink", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, cwd=cwd, timeout=60)


def test_cli_bad_value_exits_2_with_one_line(tmp_path):
    r = _cli("--port", "0", "settings", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "--port=" in r.stderr or "BLINK_PORT" in r.stderr
    r = _cli("settings", env={"BLINK_PORT": "x"}, cwd=tmp_path)
    assert r.returncode == 2 and "BLINK_PORT='x'" in r.stderr


def test_cli_config_flag_and_missing_file(tmp_path):
    (tmp_path / "c.toml").write_text('[http]\nport = 8111\n')
    r = _cli("settings", "--config", str(tmp_path / "c.toml"), cwd=tmp_path)
    assert r.returncode == 0 and "port = 8111" in r.stdout
    r = _cli("--config", str(tmp_path / "nope.toml"), "settings", cwd=tmp_path)
    assert r.returncode == 2 and "nope.toml" in r.stderr


def test_cli_help_lists_subcommands(tmp_path):
    r = _cli("--help", cwd=tmp_path)
    assert r.returncode == 0
    for word in ("run", "train", "backtest", "evaluate", "record", "--port", "--source"):
        assert word in r.stdout


def test_readme_table_lists_every_setting():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for f in config.FIELDS.values():
        assert f"`{f.metadata['env']}`" in readme, f.metadata["env"]


def test_pairs_list_products_and_pair_means_one():
    assert config.load(env={}).pairs == ("BTC-USD",)
    assert config.load(env={"PAIR": "ETH-USD"}).pairs == ("ETH-USD",)
    s = config.load(env={"PAIRS": "ETH-USD, SOL-USD,BTC-USD"})
    assert s.pairs == ("ETH-USD", "SOL-USD", "BTC-USD") and s.pair == "ETH-USD"
    s = config.load(env={}, flags={"pairs": "SOL-USD,ETH-USD"})
    assert (s.pair, s.pairs) == ("SOL-USD", ("SOL-USD", "ETH-USD"))


def test_pair_and_pairs_in_one_layer_is_an_error_a_later_layer_wins(tmp_path):
    with pytest.raises(config.ConfigError, match="PAIR.*PAIRS.*both set in the environment"):
        config.load(env={"PAIR": "BTC-USD", "PAIRS": "ETH-USD,BTC-USD"})
    with pytest.raises(config.ConfigError, match="both set in the flags"):
        config.load(env={}, flags={"pair": "BTC-USD", "pairs": "ETH-USD"})
    toml = tmp_path / "c.toml"
    toml.write_text('pair = "BTC-USD"\n')  # the shipped file names one pair; PAIRS overrides it
    assert config.load(toml, env={"PAIRS": "ETH-USD,SOL-USD"}).pairs == ("ETH-USD", "SOL-USD")
    assert config.load(toml, env={}, flags={"pair": "SOL-USD"}).pairs == ("SOL-USD",)


@pytest.mark.parametrize("value", ["btc-usd", "BTC", "BTC-USD,BTC-USD", "BTC_USD"])
def test_bad_pairs_are_refused(value):
    with pytest.raises(config.ConfigError, match="PAIRS"):
        config.load(env={"PAIRS": value})


def test_per_product_settings_name_the_models():
    one = config.load(env={})
    assert one.for_product("BTC-USD").model_name == one.model_name  # one product: MODEL_NAME
    s = config.load(env={"PAIRS": "BTC-USD,ETH-USD", "MODEL_NAME": "m"})
    eth = s.for_product("ETH-USD")
    assert (eth.pair, eth.pairs, eth.model_name) == ("ETH-USD", ("ETH-USD",), "m-ETH-USD")
    assert s.for_product("BTC-USD").model_name == "m"
    assert eth.for_product("ETH-USD") == eth  # idempotent
    with pytest.raises(config.ConfigError, match="no product 'SOL-USD'"):
        s.for_product("SOL-USD")
