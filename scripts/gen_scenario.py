"""Generate a labelled day of prompt traffic with this project's own template families.

    python scripts/gen_scenario.py --out DIR [--n 20000] [--hard] [--day 1] [--seed 7] [--pools POOLS_DIR]

Writes DIR/traffic.parquet (prompt_id, account_id, timestamp, text, org_id, account_created_at) and
DIR/labels.parquet (prompt_id, label, kind, account_id, group) in the format of the evaluation's
score.py, plus DIR/meta.json.

The campaign families, legitimate customers, shared prompts and trending topics below are written for
this project and differ from the public evaluation's: multilingual boilerplate (es, it, pt, de, nl, fr),
variable-length payloads (one line to several paragraphs), agentic / judging / rewriting / data-generation
scaffolds. ``--hard`` paraphrases each scaffold per prompt (synonyms, fillers, dropped / re-ordered /
re-bulleted lines), gives each scaffold variant its own account pool, makes half of the campaign accounts
single-use, spreads each legitimate customer over 40 API keys of one organisation and lets organic users
reuse a shared prompt several times. ``--day N`` moves the calendar: families have a first and last day,
so consecutive days share continuing campaigns, end some and start new ones, with accounts partly rotated.

Payloads and background prompts come from ``--pools`` (the public prompt pools: benign_prompts,
payloads, shared_prompts parquet files) when given, else from the bundled ``data/sample_day.parquet``
plus procedurally generated math and code tasks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

# name, payload kind, first/last day, variants (system, instructions, layout)
FAMILIES = [
    {
        "name": "own_think_tags_math",
        "payload": "math",
        "days": (1, 3),
        "variants": [
            (
                "Solve the following problem.",
                [
                    "Show your full chain of reasoning between <think> and </think>.",
                    "Then give the final answer on its own line prefixed by 'Final:'.",
                    "Do not skip any intermediate computation.",
                ],
                "{s}\n{i}\n\nProblem: {p}",
            ),
            (
                "Resuelve el siguiente problema.",
                [
                    "Muestra todo tu razonamiento entre <think> y </think>.",
                    "Luego escribe la respuesta final en una línea que empiece con 'Final:'.",
                    "No omitas ningún cálculo intermedio.",
                ],
                "{s}\n{i}\n\nProblema: {p}",
            ),
            (
                "Reasoning trace request.",
                ["Think inside <think></think> tags, step by step.", "Final answer after 'Final:' on the last line."],
                "{s} {i}\n---\n{p}",
            ),
        ],
    },
    {
        "name": "own_agent_tool_plan",
        "payload": "question",
        "days": (1, 2),
        "variants": [
            (
                "You are an autonomous agent. "
                "Tools available: search(q), python(code), browse(url), memory.write(k, v).",
                [
                    "Write a numbered plan first.",
                    "Then emit each tool call as one JSON object per line.",
                    "Finish with RESULT: and a one-paragraph answer.",
                ],
                "{s}\n{i}\n\nGoal: {p}",
            ),
            (
                "Sei un agente autonomo. Strumenti: search(q), python(code), browse(url), memory.write(k, v).",
                [
                    "Scrivi prima un piano numerato.",
                    "Poi emetti ogni chiamata di strumento come oggetto JSON su una riga.",
                    "Concludi con RESULT: e una risposta di un paragrafo.",
                ],
                "{s}\n{i}\n\nObiettivo: {p}",
            ),
        ],
    },
    {
        "name": "own_safety_rewrite",
        "payload": "request",
        "days": (1, 3),
        "variants": [
            (
                "Rewrite the user request below into a version a cautious assistant would accept.",
                [
                    "Preserve the underlying intent where it is legitimate.",
                    "Output only the rewritten request.",
                    "Never add commentary.",
                ],
                "{s}\n{i}\n\nOriginal request: <<<{p}>>>",
            ),
            (
                "Safe-rewrite task.",
                [
                    "Reformulate the request so it is acceptable, keeping its legitimate goal.",
                    "Return the reformulation only.",
                ],
                "{s}\n{i}\nInput >>> {p}",
            ),
        ],
    },
    {
        "name": "own_pairwise_judge",
        "payload": "judge",
        "days": (2, 3),
        "variants": [
            (
                "You are an impartial judge comparing two assistant answers.",
                [
                    "Decide which answer is more helpful and correct.",
                    "Output [[A]], [[B]] or [[tie]] on the first line.",
                    "Then give a rationale of at most three sentences.",
                ],
                "{s}\n{i}\n\n{p}",
            ),
            (
                "Juiz imparcial: compare as duas respostas abaixo.",
                [
                    "Decida qual é mais útil e correta.",
                    "Responda [[A]], [[B]] ou [[tie]] na primeira linha.",
                    "Depois justifique em no máximo três frases.",
                ],
                "{s}\n{i}\n\n{p}",
            ),
        ],
    },
    {
        "name": "own_docstring_doctest",
        "payload": "code",
        "days": (1, 1),
        "variants": [
            (
                "Annotate the function specified below.",
                [
                    "Add a Google-style docstring and full type hints.",
                    "Include three doctest examples.",
                    "Return only Python code.",
                ],
                "{s}\n{i}\n\n```\n{p}\n```",
            ),
            (
                "Voeg documentatie toe aan de onderstaande functie.",
                [
                    "Schrijf een docstring en type hints.",
                    "Geef drie doctest-voorbeelden.",
                    "Geef alleen Python-code terug.",
                ],
                "{s}\n{i}\n\n{p}",
            ),
        ],
    },
    {
        "name": "own_tutor_dialogue",
        "payload": "question",
        "days": (1, 3),
        "variants": [
            (
                "Generate a six-turn dialogue between a curious student and a patient teacher.",
                [
                    "Label the turns S: and T:.",
                    "The teacher must ask one check-for-understanding question.",
                    "Keep each turn under 60 words.",
                ],
                "{s}\n{i}\nTopic: {p}",
            ),
            (
                "Erzeuge einen Dialog mit sechs Beiträgen zwischen einer neugierigen Schülerin "
                "und einem geduldigen Lehrer.",
                [
                    "Beschrifte die Beiträge mit S: und T:.",
                    "Der Lehrer stellt eine Verständnisfrage.",
                    "Jeder Beitrag unter 60 Wörtern.",
                ],
                "{s}\n{i}\nThema: {p}",
            ),
        ],
    },
    {
        "name": "own_five_bullets",
        "payload": "document",
        "days": (1, 2),
        "variants": [
            (
                "Summarise the passage below in exactly five bullet points.",
                ["Each bullet at most 20 words.", "Then give a one-line TL;DR."],
                "{s}\n{i}\n\nPASSAGE:\n{p}",
            ),
            (
                "Résumez le texte ci-dessous en exactement cinq puces.",
                ["Vingt mots au plus par puce.", "Ajoutez ensuite un TL;DR d'une ligne."],
                "{s}\n{i}\n\nTEXTE :\n{p}",
            ),
        ],
    },
    {
        "name": "own_mcq_builder",
        "payload": "document",
        "days": (2, 3),
        "variants": [
            (
                "Create four multiple-choice questions from the content below.",
                [
                    "Give options (a)-(d) for each.",
                    "Mark the correct option with (*).",
                    "Add a one-sentence explanation per question.",
                ],
                "{s}\n{i}\n\nCONTENT: {p}",
            ),
            (
                "MCQ generation.",
                ["Four questions, options a-d, correct one marked (*), short explanation each."],
                "{s} {i}\n\n{p}",
            ),
        ],
    },
]
LEGIT = [
    (
        "own_legit_airline",
        "You are TravelBuddy, the assistant of Acme Airlines. Answer in a friendly tone, "
        "at most 120 words, and never promise refunds.\n\nPassenger: {p}",
    ),
    (
        "own_legit_contract_review",
        "You review clauses for the legal team of Initech. Flag risky terms, cite the "
        "clause number and suggest a safer wording.\n\nClause: {p}",
    ),
]
TRENDING = [
    (
        "own_trend_solar_eclipse",
        [
            "when is the solar eclipse visible {w}",
            "how do I watch the eclipse safely {w}",
            "Can I look at the solar eclipse with sunglasses?",
            "eclipse glasses where to buy {w}",
            "what time does the eclipse start {w}",
            "Is it safe to photograph the eclipse with my phone",
        ],
    ),
    (
        "own_trend_chip_shortage",
        [
            "why are graphics cards so expensive {w}",
            "gpu prices going down when",
            "is the chip shortage over {w}",
            "Should I wait to buy a GPU {w}?",
            "why can't I find a graphics card in stores",
        ],
    ),
]
OWN_SHARED = [
    "I want you to act as a Linux terminal. I will type commands and you will reply with what the terminal "
    "should show. Only reply with the terminal output inside one unique code block, and nothing else.",
    "I want you to act as an English translator, spelling corrector and improver. I will speak to you in any "
    "language and you will detect the language, translate it and answer in the corrected version of my text.",
    "Act as a travel guide. I will write you my location and you will suggest a place to visit near it.",
    "I want you to act as a motivational coach. I will provide you with information about someone's goals and "
    "challenges, and it will be your job to come up with strategies that can help this person.",
]
SYN = {
    "write": ["produce", "compose", "draft"],
    "first": ["to begin", "initially", "at the start"],
    "then": ["afterwards", "next", "after that"],
    "answer": ["response", "reply"],
    "must": ["should", "has to"],
    "each": ["every"],
    "below": ["that follows", "underneath"],
    "only": ["just", "solely"],
    "give": ["provide", "supply"],
    "short": ["brief", "concise"],
    "final": ["last", "concluding"],
}
FILLERS = [
    "Please follow these rules closely.",
    "Thanks.",
    "Take your time.",
    "Keep it professional.",
    "Important:",
    "Quick reminder:",
    "Note:",
]
WORDS = (
    "river orchard lantern copper meadow harbor violet summit ember glacier cedar falcon prism marble "
    "canyon voyage quartz saddle timber nectar"
).split()


def _math(rng):
    a, b, c = (int(x) for x in rng.integers(2, 500, 3))
    name = rng.choice(["Lena", "Omar", "Priya", "Tom", "Aiko", "Mateo"])
    item = rng.choice(["apples", "tickets", "marbles", "books", "coins"])
    extra = " ".join(
        f"Then {name} gives away {int(rng.integers(1, 9))} {item}." for _ in range(int(rng.integers(0, 6)))
    )
    return f"{name} has {a} {item} and buys {b} more, then sells {c}. {extra} How many {item} are left?"


def _code(rng):
    fn = "_".join(rng.choice(WORDS, 2))
    n = int(rng.integers(1, 5))
    args = ", ".join(f"x{i}" for i in range(n))
    body = "\n".join(f"    y{i} = x{i % n} * {int(rng.integers(2, 9))}" for i in range(int(rng.integers(1, 12))))
    return f"def {fn}({args}):\n{body}\n    return y0"


class Pools:
    def __init__(self, pools: Path | None, rng: np.random.Generator) -> None:
        self.rng = rng
        if pools is not None:
            benign = pl.read_parquet(pools / "benign_prompts.parquet")
            pay = pl.read_parquet(pools / "payloads.parquet")
            shared = pl.read_parquet(pools / "shared_prompts.parquet")["text"].to_list()
            self.benign = benign["text"].to_list()
            self.questions = benign.filter(pl.col("source").str.contains("nq_open|webquestions"))["text"].to_list()
            self.requests = benign.filter(pl.col("source").str.contains("hh_rlhf"))["text"].to_list()
            self.math = pay.filter(pl.col("source").str.contains("gsm8k|math500"))["text"].to_list()
            self.code = pay.filter(pl.col("source").str.contains("humaneval|mbpp|coding"))["text"].to_list()
            self.docs = benign.filter(pl.col("source").str.contains("arena|mt_bench|vicuna"))["text"].to_list()
            self.shared = shared[:300]
        else:
            sample = Path(__file__).resolve().parent.parent / "data" / "sample_day.parquet"
            self.benign = pl.read_parquet(sample)["text"].to_list()
            self.questions = [t for t in self.benign if len(t) < 120]
            self.requests = self.questions
            self.math = [_math(rng) for _ in range(3000)]
            self.code = [_code(rng) for _ in range(3000)]
            self.docs = [t for t in self.benign if len(t) >= 120] or self.benign
            self.shared = OWN_SHARED

    def pick(self, pool: list[str]) -> str:
        return pool[int(self.rng.integers(len(pool)))]

    def payload(self, kind: str) -> str:
        r = self.rng
        if kind == "math":
            return self.pick(self.math)
        if kind == "code":
            return self.pick(self.code)
        if kind == "question":
            return self.pick(self.questions)
        if kind == "request":
            return self.pick(self.requests)
        if kind == "judge":
            q = self.pick(self.questions)
            return f"Question: {q}\n\nAnswer A: {self.pick(self.docs)[:300]}\n\nAnswer B: {self.pick(self.docs)[:300]}"
        # document: one to several passages, 10 to 600 words
        k = int(r.integers(1, 5))
        return "\n\n".join(self.pick(self.docs) for _ in range(k))


def _paraphrase(rng, system, instr):
    def swap(line):
        words = line.split(" ")
        for k, w in enumerate(words):
            key = w.lower().strip(".,:")
            if key in SYN and rng.random() < 0.5:
                words[k] = str(rng.choice(SYN[key]))
        return " ".join(words)

    lines = [swap(x) for x in instr if rng.random() > 0.2] or [swap(instr[0])]
    if rng.random() < 0.4:
        rng.shuffle(lines)
    if rng.random() < 0.5:
        lines.insert(int(rng.integers(len(lines) + 1)), str(rng.choice(FILLERS)))
    sys = swap(system)
    if rng.random() < 0.3:
        sys = str(rng.choice(FILLERS)) + " " + sys
    if rng.random() < 0.3:
        sys = sys.lower()
    return sys, lines


def _bullets(rng, lines, hard):
    style = int(rng.integers(4)) if hard else 0
    if style == 0:
        return "\n".join(f"{k + 1}. {x}" for k, x in enumerate(lines))
    if style == 1:
        return "\n".join(f"- {x}" for x in lines)
    if style == 2:
        return "\n".join(f"* {x}" for x in lines)
    return " ".join(lines)


def generate(n: int, day: int, seed: int, hard: bool, pools: Path | None):
    rng = np.random.default_rng(seed * 1000 + day)
    P = Pools(pools, rng)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=day - 1)
    rows: list[dict] = []
    acct_created: dict[str, dt.datetime] = {}
    acct_org: dict[str, str] = {}

    def add(text, acct, secs, label, kind, group, org=None, created=None):
        rows.append(
            {
                "text": text,
                "account_id": acct,
                "timestamp": start + dt.timedelta(seconds=float(secs % 86400)),
                "label": label,
                "kind": kind,
                "group": group,
            }
        )
        acct_org.setdefault(acct, org or f"org-{acct}")
        if acct not in acct_created:
            acct_created[acct] = created or (start - dt.timedelta(days=float(rng.uniform(30, 2000))))

    meta = {"n": n, "day": day, "seed": seed, "hard": hard, "campaigns": {}}
    active = [f for f in FAMILIES if f["days"][0] <= day <= f["days"][1]]
    camp_total = int(0.2 * n)
    weights = np.array([1.0 + (FAMILIES.index(f) * 7) % 5 for f in active])
    weights = weights / weights.sum()
    crng = np.random.default_rng(seed)  # per-family settings identical across days
    for f in active:
        fi = FAMILIES.index(f)
        size = int(camp_total * weights[active.index(f)])
        n_acc = int(np.clip(size / crng.integers(3, 12) if not hard else size / 3, 10, 600))
        timing = ["regular", "shifts", "diurnal"][fi % 3]
        variants = f["variants"]
        created_base = start - dt.timedelta(days=float(crng.uniform(3, 40)))
        rotation = int(n_acc * 0.3) * (day - f["days"][0])  # 30% of accounts rotate each day
        t0 = float(rng.uniform(0, 3600))
        for k in range(size):
            v = k % len(variants)
            system, instr, layout = variants[v]
            if hard:
                system, lines = _paraphrase(rng, system, list(instr))
                if rng.random() < 0.25:  # a line borrowed from another variant of the family
                    lines.append(variants[(v + 1) % len(variants)][1][0])
            else:
                lines = list(instr)
            body = layout.format(s=system, i=_bullets(rng, lines, hard), p=P.payload(f["payload"]))
            if rng.random() < 0.3:
                body = f"[req {rng.integers(10**9):x}] " + body
            if hard:
                pool = v * 10_000
                a = int(rng.integers(n_acc)) if rng.random() < 0.5 else n_acc + k  # half single-use
                acct = f"{f['name'][4:12]}-{pool + a + rotation}"
            else:
                acct = f"{f['name'][4:12]}-{int(rng.integers(n_acc)) + rotation}"
            if timing == "regular":
                secs = t0 + k * 86400 / size + rng.normal(0, 20)
            elif timing == "shifts":
                shift = (k % 3) * 8 * 3600
                secs = shift + rng.uniform(0, 8 * 3600)
            else:
                secs = rng.normal(14, 4) * 3600
            created = created_base + dt.timedelta(days=float(rng.uniform(0, 10)))
            org = f"org-{acct}" if rng.random() < 0.8 else f"org-{f['name']}-{int(rng.integers(5))}"
            add(body, acct, secs, f"campaign_{f['name']}", "campaign", f["name"], org, created)
        meta["campaigns"][f["name"]] = {"prompts": size, "accounts": n_acc, "timing": timing}
    # legitimate templated customers
    for name, tmpl in LEGIT:
        n_keys = 40 if hard else 2
        for _ in range(int(0.02 * n)):
            acct = f"{name}-key{int(rng.integers(n_keys))}"
            pay = P.pick(P.questions) if "airline" in name else P.pick(P.docs)[:400]
            add(
                tmpl.format(p=pay),
                acct,
                rng.normal(13, 3.5) * 3600,
                None,
                "legit_templated",
                name,
                f"org-{name}",
                start - dt.timedelta(days=900),
            )
    # background users: heavy-tailed volume over many accounts; organic and trending users are among them
    n_users = max(int(0.7 * n) // 3, 1)
    w = 1.0 / np.arange(1, n_users + 1) ** 0.9
    w = w / w.sum()
    # organic use of popular shared prompts
    shared = [P.pick(P.shared) for _ in range(6)]
    n_org = int(0.04 * n)
    k = 0
    while k < n_org:
        user = f"user-{int(rng.integers(n_users))}"
        sp = shared[int(rng.integers(len(shared)))]
        reps = int(rng.integers(2, 7)) if hard else 1
        for _ in range(reps):
            text = sp if rng.random() < 0.7 else sp + "\n\n" + P.pick(P.questions)
            add(text, user, rng.uniform(0, 86400), None, "organic_template", "shared", None, None)
            k += 1
    # trending topic, bunched in time
    for name, phr in TRENDING:
        peak = rng.uniform(6, 20) * 3600
        for _ in range(int(0.01 * n)):
            t = str(rng.choice(phr)).format(w=str(rng.choice(["", "today", "tomorrow", "near me", "?"])))
            add(
                t if rng.random() < 0.5 else t.lower(),
                f"user-{int(rng.integers(10**6))}",
                rng.normal(peak, 3600),
                None,
                "trending",
                name,
            )
    # background
    n_bg = n - len(rows)
    users = rng.choice(n_users, n_bg, p=w)
    for u in users:
        add(P.pick(P.benign), f"user-{int(u)}", rng.normal(14, 4.5) * 3600, None, "benign", "background")
    df = pl.DataFrame(rows, infer_schema_length=None).sample(fraction=1.0, shuffle=True, seed=seed + day)
    df = df.sort("timestamp").with_columns(
        pl.format("d{}-{}", pl.lit(day), pl.int_range(0, pl.len()).cast(pl.String).str.zfill(7)).alias("prompt_id"),
        pl.col("timestamp").dt.cast_time_unit("us"),
        pl.col("account_id").replace_strict(acct_org, return_dtype=pl.String).alias("org_id"),
        pl.col("account_id")
        .replace_strict(acct_created, return_dtype=pl.Datetime("us", "UTC"))
        .alias("account_created_at"),
    )
    return df, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--day", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hard", action="store_true")
    ap.add_argument("--pools", type=Path, default=None)
    a = ap.parse_args()
    df, meta = generate(a.n, a.day, a.seed, a.hard, a.pools)
    a.out.mkdir(parents=True, exist_ok=True)
    df.select("prompt_id", "account_id", "timestamp", "text", "org_id", "account_created_at").write_parquet(
        a.out / "traffic.parquet"
    )
    df.select("prompt_id", "label", "kind", "account_id", "group").write_parquet(a.out / "labels.parquet")
    meta["kind_counts"] = dict(df.group_by("kind").len().iter_rows())
    (a.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta["kind_counts"]))


if __name__ == "__main__":
    main()
