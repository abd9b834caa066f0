from pathlib import Path

import pytest

from intentlocal.config import Settings, load_settings, settings_from_dict
from intentlocal.errors import ConfigError


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[intentlocal]\nneighbours = 7\nk = "12"\nseed = 3\n')
    s = load_settings(f, env={"INTENTLOCAL_NEIGHBOURS": "8", "INTENTLOCAL_SEED": "4"},
                      overrides={"seed": 5})
    assert (s.neighbours, s.k, s.seed) == (8, "12", 5)
    assert s.resolved_k() == 12


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "missing.toml", env={})
    assert s == Settings()
    assert s.resolved_k() is None


@pytest.mark.parametrize(
    ("text", "match"),
    [("neighbours = 'many'", "not a int"), ("nope = 1", "unknown setting"),
     ("k = '0'", "at least 1"), ("k = [", "not valid TOML"),
     ("min_share = 0", "min_share must be at least 1")],
)
def test_bad_settings_file(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(f, env={})


def test_bad_env_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="INTENTLOCAL_NEIGHBOURS"):
        load_settings(tmp_path / "x.toml", env={"INTENTLOCAL_NEIGHBOURS": "ten"})


def test_a_run_stored_before_a_setting_existed_keeps_what_it_did() -> None:
    """Resuming an old run must not switch it to a newer default: runs stored before
    `clusterer` used K-means, before `prompt_neighbours` showed all m neighbours."""
    old = Settings().to_dict()
    del old["clusterer"], old["prompt_neighbours"], old["auto_k_neighbours"]
    del old["min_share"]
    old["neighbours"] = 8
    s = settings_from_dict(old)
    assert s.clusterer == "kmeans" and s.prompt_neighbours == 8
    assert s.min_share == 1  # any neighbour's label was offered before 5 Dec
    assert s.auto_k_neighbours == 8  # auto-K's graph used m neighbours before 1 Dec
    assert settings_from_dict(Settings().to_dict()) == Settings()


def test_unknown_clusterer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="clusterer must be one of"):
        load_settings(tmp_path / "none.toml", env={}, overrides={"clusterer": "dbscan"})
