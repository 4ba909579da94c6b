import pytest

from clusterer.config import ClusterConfig, GraphConfig, RunConfig, load_config
from clusterer.errors import ConfigError


def test_defaults_are_valid():
    cfg = RunConfig()
    assert cfg.graph.k >= cfg.cluster.min_samples
    assert cfg.to_dict()["embed"]["model"] == "default"


def test_toml_then_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("seed = 3\n[graph]\nk = 20\n[cluster]\nmin_cluster_size = 7\nepsilon = 0\n")
    cfg = load_config(p, **{"graph.k": 25, "cluster.min_samples": None})
    assert (cfg.seed, cfg.graph.k, cfg.cluster.min_cluster_size, cfg.cluster.epsilon) == (3, 25, 7, 0.0)
    assert isinstance(cfg.cluster.epsilon, float)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[graph]\nkk = 3\n", r"unknown key\(s\) in \[graph\]: kk"),
        ("[graph]\nk = 'ten'\n", "graph.k must be of type int"),
        ("[graph]\nk = 1\n", r"graph.k must be within \[2, 1024\]"),
        ("[cluster]\nselection = 'best'\n", r"cluster.selection must be one of \['eom', 'leaf'\]"),
        ("[graph]\nk = 4\n[cluster]\nmin_samples = 9\n", r"min_samples \(9\) must be <= graph.k \(4\)"),
        ("device = 'tpu'\n", "run.device must be one of"),
        ("graph = 3\n", r"\[graph\] must be a table"),
        ("[graph\n", "not valid TOML"),
        ("[campaign]\nbias = nan\n", "campaign.bias must be a finite number"),
        ("[campaign]\nthreshold = nan\n", "campaign.threshold must be a finite number"),
        ("[skeleton]\nmax_df = -inf\n", "skeleton.max_df must be a finite number"),
        ("seed = -1\n", r"seed must be within \[0, 4294967295\]"),
        ("seed = 4294967296\n", r"seed must be within"),
        ("[ingest]\nfill_account = ' '\n", "ingest.fill_account must be a non-empty account ID"),
    ],
)
def test_bad_config_is_reported(tmp_path, text, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_stage_blocks_validate_directly():
    with pytest.raises(ConfigError):
        GraphConfig(k=0)
    with pytest.raises(ConfigError):
        ClusterConfig(epsilon=-1.0)
    with pytest.raises(ConfigError, match="cluster.attach_family must be a finite number"):
        ClusterConfig(attach_family=float("nan"))
    # a field without a range of its own: the run config refuses it when built in Python too
    from clusterer.config import CampaignConfig, RunConfig

    with pytest.raises(ConfigError, match="campaign.bias must be a finite number"):
        RunConfig(campaign=CampaignConfig(bias=float("nan")))


def test_readme_config_example_is_the_defaults(tmp_path):
    """The README's full TOML example loads and documents the defaults, so it cannot drift from them."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert block is not None and "[campaign]" in block.group(1) and "[cluster]" in block.group(1)
    (tmp_path / "example.toml").write_text(block.group(1), encoding="utf-8")
    assert load_config(tmp_path / "example.toml") == load_config(None)
