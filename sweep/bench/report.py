"""The benchmark's table, CSV and target lines (reported as met or missed, never asserted)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from .harness import Case
from .machine import blas_text
from .workloads import FLOOR_TARGET, WORKLOADS

CSV_COLUMNS = ("implementation", "dtype", "N", "workload", "seconds_per_run", "vs_sklearn", "vs_floor",
               "min_s", "max_s", "repeats", "final_acc", "note", "cpu_model", "cores", "blas")
F32_TARGET, F32_ACC_PP = 1.7, 0.5


def best(cases: list[Case], impl: str, dtype: str, workload: str) -> Case | None:
    """The fastest measured case of an implementation on a workload (best N)."""
    found = [c for c in cases if (c.impl, c.dtype, c.workload) == (impl, dtype, workload) and c.times]
    return min(found, key=lambda c: c.median) if found else None


def table_rows(cases: list[Case], floors: dict[tuple[str, str], float], machine: dict[str, Any]) -> list[dict]:
    """One CSV row per case (skipped ones too) plus one compute-floor row per dtype and workload."""
    skl = {c.workload: c.median for c in cases if c.impl == "sklearn" and c.times}
    common = {"cpu_model": machine.get("cpu_model", ""), "cores": machine.get("cores", ""),
              "blas": blas_text(machine.get("blas", []))}
    rows = []
    for c in cases:
        s = c.median
        rows.append({"implementation": c.label, "dtype": c.dtype, "N": c.N, "workload": c.workload,
                     "seconds_per_run": s, "vs_sklearn": skl.get(c.workload, np.nan) / s if c.times else np.nan,
                     "vs_floor": s / floors[(c.dtype, c.workload)] if c.times else np.nan,
                     "min_s": min(c.times) if c.times else np.nan, "max_s": max(c.times) if c.times else np.nan,
                     "repeats": len(c.times), "final_acc": c.acc, "note": c.skipped or "", **common})
    for (dt, key), f in sorted(floors.items(), key=lambda kv: (kv[0][1], kv[0][0] == "float32")):
        rows.append({"implementation": "compute floor", "dtype": dt, "N": "", "workload": key,
                     "seconds_per_run": f, "vs_sklearn": skl.get(key, np.nan) / f, "vs_floor": 1.0,
                     "min_s": "", "max_s": "", "repeats": "", "final_acc": "",
                     "note": "GEMM FLOPs at the large-GEMM rate + elementwise work at the best exp rate", **common})
    return rows


def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None or v == "" or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return format(v, spec) if isinstance(v, (float, np.floating)) else str(v)


def write_csv(path: Path, rows: list[dict], columns=CSV_COLUMNS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(row.get(k, ""), ".6g") for k in columns})


def format_table(rows: list[dict], keys: list[str]) -> str:
    """Implementation x workload: s/network-run, x sklearn (> 1 = faster), x floor (time / floor)."""
    keyed: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        if r["workload"] in keys:
            keyed.setdefault((r["implementation"], r["dtype"], r["N"]), {})[r["workload"]] = r
    name_w = max(len(k[0]) for k in keyed) + 1
    head = f"{'implementation':<{name_w}} {'dtype':<8}{'N':>4} "
    sub = " " * len(head)
    for key in keys:
        head += f"| {WORKLOADS[key].title if key in WORKLOADS else key:^27.27} "
        sub += f"| {'s/run':>9} {'x sklearn':>9} {'x floor':>7} "
    lines = [head.rstrip(), sub.rstrip(), "-" * len(sub.rstrip())]
    for (name, dt, N), by in keyed.items():
        line = f"{name:<{name_w}} {dt:<8}{str(N):>4} "
        for key in keys:
            r = by.get(key)
            if r is None:
                line += f"| {'':>27} "
            elif r.get("repeats") == 0:
                line += f"| {'skipped (> max call)':>27} "
            else:
                line += (f"| {_fmt(r['seconds_per_run'], '9.4f'):>9} {_fmt(r['vs_sklearn'], '8.2f') + 'x':>9} "
                         f"{_fmt(r['vs_floor'], '6.2f') + 'x':>7} ")
        lines.append(line.rstrip())
    return "\n".join(lines)


def _status(ratio: float, goal: float, higher_is_better: bool = True) -> str:
    ok = ratio >= goal if higher_is_better else ratio <= goal
    if ok:
        return "MET"
    miss = goal / ratio if higher_is_better else ratio / goal
    return f"MISSED by {100 * (miss - 1):.0f}%"


def target_lines(cases: list[Case], floors: dict[tuple[str, str], float], keys: list[str]) -> list[str]:
    """scikit-learn ratios, distance to the floor, float32 vs float64, sweep vs JAX: one line each."""
    out = []
    for key in keys:
        w, skl = WORKLOADS[key], best(cases, "sklearn", "float64", key)
        sw = best(cases, "sweep", "float64", key)
        if skl is None or sw is None:
            out.append(f"target {key}: NOT MEASURED")
            continue
        ratio = skl.median / sw.median
        out.append(f"target >={w.sklearn_target:g}x sklearn on {w.title} (float64, best N): "
                   f"{_status(ratio, w.sklearn_target)} ({ratio:.1f}x, N={sw.N})")
    for key in keys:
        sw = best(cases, "sweep", "float64", key)
        if sw is not None:
            ratio = sw.median / floors[("float64", key)]
            out.append(f"target within {FLOOR_TARGET:g}x of the compute floor on {WORKLOADS[key].title} "
                       f"(float64, best N): {_status(ratio, FLOOR_TARGET, False)} ({ratio:.2f}x, N={sw.N})")
    out += [_f32_line(cases, key) for key in keys]
    out += _jax_lines(cases, keys)
    return out


def _f32_line(cases: list[Case], key: str) -> str:
    """float32 speed-up at the best N of each dtype; accuracy compared at the largest N measured in
    both (the same initial weights and data order)."""
    what = f"target float32 >={F32_TARGET:g}x float64, accuracy within {F32_ACC_PP:g} pp, on {WORKLOADS[key].title}"
    c64, c32 = best(cases, "sweep", "float64", key), best(cases, "sweep", "float32", key)
    if c64 is None or c32 is None:
        return f"{what}: NOT MEASURED"
    ratio = c64.median / c32.median
    runs = {(c.dtype, c.N): c for c in cases if c.impl == "sweep" and c.workload == key and c.accs is not None}
    both = [N for (dt, N) in runs if dt == "float64" and ("float32", N) in runs]
    if not both:
        return f"{what}: {_status(ratio, F32_TARGET)} ({ratio:.2f}x; accuracy not comparable)"
    a64, a32 = (float(np.nanmean(runs[(dt, max(both))].accs)) for dt in ("float64", "float32"))
    dpp = 100 * abs(a32 - a64)
    status = _status(ratio, F32_TARGET) if ratio < F32_TARGET else ("MET" if dpp <= F32_ACC_PP else "MISSED (accuracy)")
    return (f"{what}: {status} ({ratio:.2f}x, N={c64.N}/{c32.N}; accuracy {100 * a64:.2f}% vs {100 * a32:.2f}%, "
            f"{dpp:.2f} pp apart at N={max(both)})")


def _jax_lines(cases: list[Case], keys: list[str]) -> list[str]:
    if not any(c.impl == "jax" and c.times for c in cases):
        return ["target sweep ahead of JAX on CPU: NOT MEASURED (JAX not installed)"]
    parts, ok = [], True
    for key in keys:
        for dt in ("float64", "float32"):
            sw, jx = best(cases, "sweep", dt, key), best(cases, "jax", dt, key)
            if sw is None or jx is None:
                parts.append(f"{key} {dt}: not measured")
                ok = False
                continue
            ratio = jx.median / sw.median
            ok &= ratio > 1
            parts.append(f"{key} {dt} {ratio:.2f}x")
    return [f"target sweep ahead of JAX on CPU on every workload (best N each, JAX time / sweep time): "
            f"{'MET' if ok else 'MISSED'} ({'; '.join(parts)})"]
