"""The report folder of a benchmark run: ``scores.json`` (everything), ``items.jsonl``
(per question and mode, for inspection), ``summary.md`` / ``summary.html`` (the comparison
table) and ``plots/<benchmark>.png`` (modes side by side, one group per metric)."""
from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path

from .bench import Run

# Shown in tables and plots, in this order ("hit@" whatever the domain's top_k); the rest
# stays in scores.json.
HEADLINE = ("accuracy", "top3", "em", "f1", "faithfulness", "relevancy", "hit@", "mrr")


def _metrics(scores: dict) -> list[str]:
    present = sorted({k for modes in scores.values() for k in modes})
    return [k for h in HEADLINE for k in present if k == h or (h.endswith("@") and k.startswith(h))]


def table(run: Run) -> list[str]:
    """Markdown: one table per benchmark, a row per mode."""
    lines = [f"# Evaluation: {run.domain}", ""]
    for name, modes in run.scores.items():
        cfg = run.config["benchmarks"][name]
        cols = _metrics(modes)
        lines += [f"## {name}", "", f"{cfg['items']} items from `{cfg['data']}`"
                  + (f", retrieval over {cfg['passages']} passages" if cfg["passages"] else ""), "",
                  "| mode | " + " | ".join(cols) + " | n | seconds |", "|---" * (len(cols) + 3) + "|"]
        for mode, sc in modes.items():
            cells = [f"{sc[c]:.3f}" if c in sc else "–" for c in cols]
            lines.append(f"| {mode} | " + " | ".join(cells) + f" | {sc['n']} | {sc['seconds']} |")
        for mode, reason in run.skipped.get(name, {}).items():
            lines.append(f"| {mode} | skipped: {reason} |" + " |" * (len(cols) + 1))
        verdict = _winner(modes, cols)
        if verdict:
            lines += ["", verdict]
        lines += _per_task(modes) + [""]
    return lines


def _per_task(modes: dict) -> list[str]:
    """Accuracy per sub-task (LegalBench), a column per mode."""
    tasks = sorted({t for sc in modes.values() for t in sc.get("tasks", {})})
    if not tasks:
        return []
    names = list(modes)
    out = ["", "| task | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for t in tasks:
        out.append(f"| {t} | " + " | ".join(f"{modes[m]['tasks'][t]:.2f}" if t in modes[m].get("tasks", {}) else "–"
                                             for m in names) + " |")
    return out


def _winner(modes: dict, cols: list[str]) -> str | None:
    """Which mode leads, on the first headline metric that separates them."""
    if len(modes) < 2:
        return None
    for c in cols:
        values = {m: sc[c] for m, sc in modes.items() if c in sc}
        if len(values) == len(modes) and len(set(values.values())) > 1:
            ranked = sorted(values, key=values.get, reverse=True)
            return (f"Best on {c}: **{ranked[0]}** ({values[ranked[0]]:.3f}, "
                    f"+{values[ranked[0]] - values[ranked[1]]:.3f} over {ranked[1]}).")
    return "No metric separates the modes." if cols else None


def plot(run: Run, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    modes = run.scores[name]
    cols = _metrics(modes)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(cols), 3.6))
    width = 0.8 / max(1, len(modes))
    for i, (mode, sc) in enumerate(modes.items()):
        xs = [j + i * width for j in range(len(cols))]
        ax.bar(xs, [sc.get(c, 0.0) for c in cols], width, label=mode)
    ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylim(0, 1)
    ax.set_title(f"{run.domain}: {name} ({run.config['benchmarks'][name]['items']} items)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(run: Run, out: Path) -> list[Path]:
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps({k: v for k, v in asdict(run).items() if k != "items"}, indent=1))
    with (out / "items.jsonl").open("w", encoding="utf-8") as f:
        for row in run.items:
            f.write(json.dumps(row, default=str) + "\n")
    md = table(run)
    (out / "summary.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    files = [out / "scores.json", out / "items.jsonl", out / "summary.md", out / "summary.html"]
    for name in run.scores:
        png = out / "plots" / f"{name}.png"
        plot(run, name, png)
        files.append(png)
    (out / "summary.html").write_text(_html(md, [p for p in files if p.suffix == ".png"], out), encoding="utf-8")
    return files


def _html(md: list[str], plots: list[Path], out: Path) -> str:
    """The Markdown tables as HTML, followed by the plots."""
    body, rows = [], []
    for line in md + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                rows.append(line.strip("|").split("|"))
            continue
        if rows:
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in rest)
                        + "</table>")
            rows = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    body += [f'<img src="{p.relative_to(out).as_posix()}" alt="{p.stem}">' for p in plots]
    return ("<!doctype html><meta charset='utf-8'><title>Evaluation</title><style>body{font-family:sans-serif}"
            "td,th{border:1px solid #ccc;padding:2px 8px}table{border-collapse:collapse}</style>" + "\n".join(body))
