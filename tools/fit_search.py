#!/usr/bin/env python3
"""Fit the ranking weights of `mcode search` on the bug reports' dev split; check them on the test split.

Each report is searched once, at its fix's parent (tools/eval_search.py's bugs task: same data, same
options); what the search gathered is then ranked again under each set of weights tried, so the
fit costs one indexing pass. A coordinate search moves one weight at a time along a grid, keeping a
move only when it raises the dev split's Acc@5 (then its mean reciprocal rank) strictly, so ties stay
at the shipped value. The full-text weight stays 1: it sets the scale the others are measured on.

The fitted weights are worth shipping only if the test split, which the fit never saw, improves too
(more reports found at some depth, none fewer at any), and the stdlib task does not get worse (no
Acc@k of mcode's lower, lexical or hybrid, symbol or file level, on `--stdlib` docstrings): the
last lines say which. Rerun as is when bugs.json grows (`--data`, `--texts` for other files).

    python tools/fit_search.py [--repos DIR] [--data FILE --texts FILE] [--hybrid] [--stdlib N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace

from eval_search import (
    HYBRID,
    LEXICAL,
    add_bug_arguments,
    add_index_arguments,
    bug_groups,
    gather_bugs,
    load_bugs,
    run_stdlib,
    top_files,
    weights_text,
)

from mcode.retrieval.ranking import Candidate, Weights

# Multiples of the full-text weight for the additive signals; the others on their own scale.
GRID = {
    "vector": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "symbol": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "rarity": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
    "path": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "frame": (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0),
    "test_penalty": (0.2, 0.4, 0.6, 0.8, 1.0),
    "pool": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0),
}
PASSES = 4
# The stdlib task's figures for mcode that fitted weights must not lower.
MCODE_ROWS = [
    f"mcode {system}, {level} level"
    for system in ("lexical only", "hybrid")
    for level in ("symbol", "file")
]


def figures(
    reports: list[dict], candidates: list[list[Candidate]], members: list[int], weights: Weights
) -> dict[str, float]:
    """Acc@1/5/10 and the mean reciprocal rank (in the first 10) over `members`."""
    rankings = top_files([candidates[i] for i in members], weights)
    hits = {1: 0, 5: 0, 10: 0}
    reciprocal = 0.0
    for i, ranking in zip(members, rankings, strict=True):
        found = [rank for rank, path in enumerate(ranking) if path in reports[i]["targets"]]
        if found:
            reciprocal += 1 / (found[0] + 1)
            for k in hits:
                hits[k] += found[0] < k
    n = max(1, len(members))
    return {
        **{f"acc@{k}": round(v / n, 3) for k, v in hits.items()},
        "mrr": round(reciprocal / n, 3),
    }


def objective(figure: dict[str, float]) -> tuple[float, float]:
    return figure["acc@5"], figure["mrr"]


def improves(fitted: dict[str, float], shipped: dict[str, float]) -> bool:
    """A report more found at some depth and none fewer at any: a better mean rank alone, which
    one report moving up a place gives on a few dozen, is no reason to change what ships."""
    ks = ("acc@1", "acc@5", "acc@10")
    return all(fitted[k] >= shipped[k] for k in ks) and any(fitted[k] > shipped[k] for k in ks)


def fit(
    reports: list[dict],
    candidates: list[list[Candidate]],
    dev: list[int],
    start: Weights,
    hybrid: bool,
) -> tuple[Weights, list[str]]:
    """Coordinate search from `start` on the dev reports; the weights and each move made."""
    best = start
    best_score = objective(figures(reports, candidates, dev, best))
    moves = []
    for sweep in range(PASSES):
        moved = False
        for signal, values in GRID.items():
            if signal == "vector" and not hybrid:
                continue
            for value in values:
                trial = replace(best, **{signal: value})
                score = objective(figures(reports, candidates, dev, trial))
                if score > best_score:
                    moves.append(
                        f"pass {sweep + 1}: {signal} {getattr(best, signal):g} -> {value:g}: "
                        f"dev Acc@5 {best_score[0]:.1%} -> {score[0]:.1%}, "
                        f"MRR {best_score[1]:.3f} -> {score[1]:.3f}"
                    )
                    best, best_score, moved = trial, score, True
        if not moved:
            break
    return best, moves


def stdlib_check(args: argparse.Namespace, fitted: Weights) -> dict[str, dict[str, dict]]:
    """mcode's stdlib figures (`--stdlib` docstrings, lexical and hybrid, symbol and file level)
    with the shipped and the fitted weights."""
    scores = {}
    for name, weights in (("shipped", args.weights), ("fitted", fitted)):
        task = argparse.Namespace(
            **{**vars(args), "weights": weights, "sample": args.stdlib},
            corpus=None,
            seed=7,
            show_misses=0,
        )
        rows = run_stdlib(task)["scores"]
        scores[name] = {system: figure for system, figure in rows.items() if system in MCODE_ROWS}
    return scores


def worse(fitted: dict[str, dict], shipped: dict[str, dict]) -> list[str]:
    """The stdlib figures the fitted weights lower."""
    return [
        f"{system} {k}: {shipped[system][k]:.1%} -> {fitted[system][k]:.1%}"
        for system in MCODE_ROWS
        for k in shipped[system]
        if fitted[system][k] < shipped[system][k]
    ]


def row(name: str, figure: dict[str, float], n: int) -> str:
    cells = "  ".join(f"Acc@{k} {figure[f'acc@{k}']:6.1%}" for k in (1, 5, 10))
    return f"  {name:<22} {cells}  MRR {figure['mrr']:.3f}   (n={n})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_bug_arguments(parser)
    add_index_arguments(parser)
    parser.add_argument(
        "--stdlib",
        type=int,
        default=200,
        metavar="N",
        help="when the test split improves, check the stdlib task on N docstrings with both "
        "weights (0: only print the command; default: %(default)s)",
    )
    args = parser.parse_args()
    args.ablation = False
    started = time.perf_counter()
    reports = load_bugs(args)
    groups = bug_groups(reports, by_repo=False)
    dev, test = groups["split dev"], groups["split test"]
    if not dev or not test:
        raise SystemExit(f"{args.data}: the reports fill only one split; a fit needs both")
    shipped = args.weights
    gathered, _ = gather_bugs(reports, args)
    system = HYBRID if args.hybrid else LEXICAL
    candidates = gathered[system].candidates
    fitted, moves = fit(reports, candidates, dev, shipped, args.hybrid)
    results: dict = {
        "system": system,
        "reports": {"dev": len(dev), "test": len(test)},
        "shipped": asdict(shipped),
        "fitted": asdict(fitted),
        "moves": moves,
        "scores": {
            split: {
                name: figures(reports, candidates, members, weights)
                for name, weights in (("shipped", shipped), ("fitted", fitted))
            }
            for split, members in (("dev", dev), ("test", test), ("all", groups["all"]))
        },
    }
    test_scores = results["scores"]["test"]
    better = improves(test_scores["fitted"], test_scores["shipped"])
    results["test_improves"] = better
    lowered: list[str] = []
    if fitted == shipped:
        verdict = "the fit kept every shipped weight; the defaults stand"
    elif not better:
        verdict = "no more test reports found at any depth (Acc@1/5/10); the defaults stand"
    elif not args.stdlib:
        verdict = (
            "the test split improves; ship them if the stdlib task does not get worse:\n"
            f"  tools/eval_search.py stdlib --sample 200 --weights {weights_text(fitted)}\n"
            "  against the same without --weights"
        )
    else:
        results["stdlib"] = stdlib_check(args, fitted)
        lowered = worse(results["stdlib"]["fitted"], results["stdlib"]["shipped"])
        verdict = (
            "the test split improves, but the stdlib task gets worse; the defaults stand"
            if lowered
            else "the test split improves and the stdlib task does not get worse: ship them"
        )
    results["verdict"] = verdict
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"fit of {system}'s weights on {len(dev)} dev reports, checked on {len(test)} test reports "
        f"({results['seconds']} s)"
    )
    print("\n".join(f"  {m}" for m in moves) or "  no move improved the dev split")
    for split, members in (("dev", dev), ("test", test), ("all", groups["all"])):
        print(f" {split}:")
        for name in ("shipped", "fitted"):
            print(row(f"{name} weights", results["scores"][split][name], len(members)))
    print(f"fitted: --weights {weights_text(fitted)}")
    print(f"  as constants: {fitted!r}")
    if not args.hybrid:
        print("  (vector: not fitted, lexical only; --hybrid fits it too)")
    if "stdlib" in results:
        print(f" stdlib task, {args.stdlib} docstrings:")
        for name in ("shipped", "fitted"):
            for system, figure in results["stdlib"][name].items():
                cells = "  ".join(f"{k} {v:6.1%}" for k, v in figure.items())
                print(f"  {name} weights, {system:<32} {cells}")
        print("\n".join(f"  worse: {text}" for text in lowered))
    print(f"verdict: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
