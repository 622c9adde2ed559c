"""Compare `tokendial generate --json` runs on the GPU and on the CPU; write summary.json.

Reads ``RUNS/<model>_<prompt>_<mode>_<n>.jsonl`` (+ ``.llama.log``, ``.stderr``) written by
run_gpu_check.sh, where mode is ``gpu`` (all layers offloaded), ``cpu`` (0 layers) or ``nogpu``
(0 layers, GPU hidden with CUDA_VISIBLE_DEVICES=). For each model and prompt it checks that every run
produced the same token events (id and text, in order) and the same stop reason as the first GPU
run, and reports layers offloaded (from ModelInfo), the card, and decode tokens/s per mode.

    python tests/gpu/compare_runs.py RUNS_DIR --out summary.json [--phases phases.tsv]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LABEL_RE = re.compile(r"^(?P<model>.+)_(?P<prompt>[a-z]+)_(?P<mode>gpu|cpu|nogpu)_(?P<n>\d+)$")
CARD_RE = re.compile(r"Device \d+: (?P<name>[^,]+), compute capability (?P<cc>[\d.]+)")
OFFLOADED_RE = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")


def walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a JSON value, outermost first."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def first_with(objects: list[Any], key: str) -> dict[str, Any] | None:
    """The first dict (searching nested ones) that has ``key``."""
    for obj in objects:
        for found in walk(obj):
            if key in found:
                return found
    return None


def parse_run(jsonl: Path) -> dict[str, Any]:
    """Token events, stop reason, speeds and model facts of one run."""
    objects: list[Any] = []
    bad_lines = 0
    for line in jsonl.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            objects.append(json.loads(line))
        except json.JSONDecodeError:
            bad_lines += 1
    tokens: list[dict[str, Any]] = []
    for obj in objects:
        event = next((d for d in walk(obj) if "token_id" in d and "index" in d and "candidates" in d), None)
        if event is not None:
            tokens.append(event)
    done = first_with([o for o in objects if first_with([o], "stop") is not None][-1:], "stop")
    info = first_with(objects, "gpu_layers_offloaded")
    stderr = jsonl.with_suffix(".stderr")
    llama_log = jsonl.with_suffix(".llama.log")
    log_text = llama_log.read_text(errors="replace") if llama_log.exists() else ""
    card = CARD_RE.search(log_text)
    offloaded_log = OFFLOADED_RE.search(log_text)
    stop = done.get("stop") if done else None
    return {
        "ok": done is not None and bad_lines == 0,
        "bad_lines": bad_lines,
        "stderr_tail": stderr.read_text(errors="replace")[-600:] if stderr.exists() else "",
        "token_ids": [int(t["token_id"]) for t in tokens],
        "texts": [str(t.get("text", "")) for t in tokens],
        "candidates": [t.get("candidates") or [] for t in tokens],
        "stop": stop,
        "done": done or {},
        "info": info or {},
        "card": card.group("name").strip() if card else None,
        "compute_capability": card.group("cc") if card else None,
        "offloaded_log": f"{offloaded_log.group(1)}/{offloaded_log.group(2)}" if offloaded_log else None,
    }


def tokens_per_s(run: dict[str, Any]) -> float | None:
    """Decode speed after the first token, from the final event (or from its timings)."""
    done = run["done"]
    for key in ("tokens_per_s", "tok_per_s", "tokens_per_second"):
        for found in walk(done):
            if isinstance(found.get(key), int | float):
                return float(found[key])
    decode_ms = next(
        (d["decode_ms"] for d in walk(done) if isinstance(d.get("decode_ms"), int | float)), None
    )
    n = len(run["token_ids"])
    if decode_ms and n > 1:
        return (n - 1) * 1000.0 / float(decode_ms)
    return None


def top2_margin(candidates: list[Any]) -> float | None:
    """Logit gap between the two most likely candidates (small = a near-tie)."""
    logits = sorted(
        (float(c["logit"]) for c in candidates if isinstance(c, dict) and "logit" in c), reverse=True
    )
    return logits[0] - logits[1] if len(logits) > 1 else None


def stop_key(stop: Any) -> Any:
    """The parts of a stop reason that must match (not timings)."""
    if not isinstance(stop, dict):
        return stop
    return {k: stop.get(k) for k in ("kind", "token_id", "token_text", "limit", "generated", "stop_string")}


def compare(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Same token ids, texts and stop reason? Where and how close was the first difference?"""
    same_ids = reference["token_ids"] == other["token_ids"]
    same_texts = reference["texts"] == other["texts"]
    same_stop = stop_key(reference["stop"]) == stop_key(other["stop"])
    result: dict[str, Any] = {"identical": same_ids and same_texts and same_stop, "same_stop": same_stop}
    if not (same_ids and same_texts):
        a, b = reference["token_ids"], other["token_ids"]
        at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        result["first_difference"] = {
            "index": at,
            "reference_token": a[at] if at < len(a) else None,
            "other_token": b[at] if at < len(b) else None,
            "reference_top2_logit_margin": top2_margin(reference["candidates"][at]) if at < len(a) else None,
            "other_top2_logit_margin": top2_margin(other["candidates"][at]) if at < len(b) else None,
        }
    return result


def summarize(runs_dir: Path) -> dict[str, Any]:
    """Group the runs by model and prompt, compare each to its first GPU run, collect figures."""
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for jsonl in sorted(runs_dir.glob("*.jsonl")):
        match = LABEL_RE.match(jsonl.stem)
        if match:
            groups[(match["model"], match["prompt"])][f"{match['mode']}_{match['n']}"] = parse_run(jsonl)
    models: dict[str, Any] = {}
    cards: set[str] = set()
    for (model, prompt), runs in sorted(groups.items()):
        entry = models.setdefault(model, {"prompts": {}})
        reference_name = "gpu_1" if "gpu_1" in runs else sorted(runs)[0]
        reference = runs[reference_name]
        speeds: dict[str, list[float]] = defaultdict(list)
        per_run: dict[str, Any] = {}
        for name, run in sorted(runs.items()):
            if run["card"]:
                cards.add(f"{run['card']} (compute capability {run['compute_capability']})")
            speed = tokens_per_s(run)
            if speed is not None and run["ok"]:
                speeds[name.split("_")[0]].append(speed)
            info = run["info"]
            per_run[name] = {
                "ok": run["ok"],
                "generated": len(run["token_ids"]),
                "stop": run["stop"],
                "tokens_per_s": speed,
                "gpu_label": gpu_label(info),
                "backend": info.get("backend"),
                "gpu_offload_supported": info.get("gpu_offload_supported"),
                "gpu_layers_requested": info.get("gpu_layers_requested"),
                "gpu_layers_offloaded": info.get("gpu_layers_offloaded"),
                "layers_total": info.get("layers_total"),
                "offloaded_in_llama_log": run["offloaded_log"],
                "warnings": info.get("warnings"),
                "vs_" + reference_name: compare(reference, run) if name != reference_name else None,
            }
            if not run["ok"]:
                per_run[name]["stderr_tail"] = run["stderr_tail"]
        entry["prompts"][prompt] = {
            "reference": reference_name,
            "text": "".join(reference["texts"]),
            "all_identical": all(r["ok"] and compare(reference, r)["identical"] for r in runs.values()),
            "median_tokens_per_s": {mode: statistics.median(v) for mode, v in speeds.items() if v},
            "runs": per_run,
        }
        gpu_runs = [r for n, r in per_run.items() if n.startswith("gpu")]
        if gpu_runs:
            entry["gpu_offloaded"] = gpu_runs[0]["gpu_label"]
            entry["gpu_warnings"] = gpu_runs[0]["warnings"]
    for entry in models.values():
        entry["all_identical"] = all(p["all_identical"] for p in entry["prompts"].values())
    return {"cards": sorted(cards), "models": models}


def gpu_label(info: dict[str, Any]) -> str | None:
    """ModelInfo.gpu_label as the engine computes it ("GPU 31/31" or "CPU")."""
    if "gpu_label" in info:
        return str(info["gpu_label"])
    if not info:
        return None
    if info.get("gpu_layers_offloaded"):
        return f"GPU {info['gpu_layers_offloaded']}/{info.get('layers_total') or '?'}"
    return "CPU"


def table(summary: dict[str, Any]) -> str:
    """A short text table of the figures."""
    lines = [f"card: {', '.join(summary['cards']) or 'none found in llama.cpp log'}"]
    for model, entry in summary["models"].items():
        lines.append(
            f"model {model}: GPU run reports {entry.get('gpu_offloaded')}; identical: "
            f"{'yes' if entry['all_identical'] else 'NO'}"
        )
        for prompt, data in entry["prompts"].items():
            speeds = ", ".join(
                f"{mode} {value:.1f} tok/s" for mode, value in data["median_tokens_per_s"].items()
            )
            stops = {
                n: (r["stop"] or {}).get("kind") if isinstance(r["stop"], dict) else r["stop"]
                for n, r in data["runs"].items()
            }
            lines.append(f"  {prompt}: {speeds}; identical {data['all_identical']}; stops {stops}")
            for name, run in data["runs"].items():
                diff = run.get("vs_" + data["reference"])
                if diff and not diff["identical"]:
                    lines.append(f"    {name} differs: {json.dumps(diff.get('first_difference'))}")
                if not run["ok"]:
                    lines.append(f"    {name} FAILED: {run.get('stderr_tail', '')[-300:]!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description="Compare GPU and CPU runs of tokendial generate --json.")
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--phases", type=Path, help="phases.tsv with the time of each phase")
    args = parser.parse_args(argv)
    summary = summarize(args.runs_dir)
    if args.phases and args.phases.exists():
        rows = [line.split("\t") for line in args.phases.read_text().splitlines()[1:] if line.strip()]
        summary["phases_s"] = [{"phase": r[0], "seconds": float(r[1]), "exit": int(r[2])} for r in rows]
    args.out.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    print(table(summary))
    return 0 if summary["models"] else 1


if __name__ == "__main__":
    sys.exit(main())
