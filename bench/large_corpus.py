"""Large-corpus dry runs: do the recipe stages grow linearly with the corpus?

Run by hand (not part of the tests; ``tests/test_large_corpus.py`` runs a tiny ``--quick`` version)::

    .venv/bin/python bench/large_corpus.py [--sections prep score extract_resume]
        [--sizes 10000 30000 100000] [--nj 2] [--trials-per-utt 10] [--cohort-speakers 5000]
        [--top-n 300] [--extract-utts 10000] [--shard-size 500] [--exp EXP] [--workdir DIR] [--quick]
        [--results FILE.json] [--doc docs/benchmarks.md] [--section large_corpus]

Every stage runs as the command ``run.sh`` runs, in its own process, under a small
measuring parent (``--measured``) that reports the wall time, the CPU time (user + system,
the stage's whole process tree) and the peak resident set of the largest process of the tree
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``).  The data are generated first, untimed, under
``--workdir`` (default: a temporary directory, removed at the end).

* ``prep`` -- for each size ``n``: a Kaldi training directory of ``n`` utterances (50 per
  speaker) and a test directory of ``n / 10`` (10 per speaker), each a distinct 0.2 s 16 kHz
  PCM WAV file, and ``n`` trials on the test directory (about 10 % drawn as same-speaker pairs), then stage 1
  (``local/prepare_kaldi_dir.sh``, what ``egs/kaldi/run.sh`` runs) and stage 2
  (``python -m spkpeft.bin.validate_data_dir --task sv``).
* ``score`` -- for each size ``n``: ``trials_per_utt * n`` trials (1,000,000 at n = 100,000)
  over ``n / 5`` test utterances with random 192-dimensional embeddings (Kaldi ark/scp), and a
  cohort of ``--cohort-speakers`` training speakers (2 utterances each), then stage 5
  (``python -m spkpeft.bin.score`` with mean subtraction, S-norm and AS-norm top-N).
* ``extract_resume`` -- a 1-epoch experiment on ``random:tiny_wavlm`` (``conf/sv/mini.yaml``,
  trained untimed; or ``--exp``, any trained sv experiment), then stage 4 (``python -m spkpeft.bin.extract``) on ``--extract-utts``
  utterances three times: uninterrupted; killed with SIGKILL (whole process group) once half
  of the shards are written; resumed.  The resumed embeddings must equal the uninterrupted
  ones bit for bit; the time lost is (killed + resumed) - uninterrupted.

Growth factors compare the largest size with the smallest: ``time(n_max) / time(n_min)``
against the ideal ``n_max / n_min``.  The report is a Markdown section written into
``--doc`` (``--doc ''``: print only); ``--results`` keeps the raw numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from bench.peft_cost import cpu_model, update_section  # noqa: E402  (shared machine line, section writer)

SAMPLE_RATE = 16000
SECONDS = 0.2
UTTS_PER_TRAIN_SPK = 50
UTTS_PER_TEST_SPK = 10
TARGET_FRACTION = 0.1  # of the trial draws
MIN_TEST_UTTS = 100
SECTIONS = ("prep", "score", "extract_resume")
FULL = {"sizes": [10000, 30000, 100000], "cohort_speakers": 5000, "top_n": 300, "extract_utts": 10000,
        "shard_size": 500, "trials_per_utt": 10}
QUICK = {"sizes": [200, 600], "cohort_speakers": 40, "top_n": 10, "extract_utts": 48, "shard_size": 6, "trials_per_utt": 2}


# ----------------------------------------------------------------------------- measuring


def measured_child(cmd: Sequence[str], out: Path) -> int:
    """``--measured`` mode: run ``cmd``, write ``{wall_s, cpu_s, peak_rss_mb, returncode}`` to ``out``."""
    start = time.perf_counter()
    code = subprocess.call(list(cmd))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {"wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
              "peak_rss_mb": usage.ru_maxrss / 1024, "returncode": code}
    out.write_text(json.dumps(result))
    return code


def measure(cmd: Sequence[str], log: Path, cwd: Path = REPO) -> dict:
    """Run ``cmd`` under a fresh measuring process; its output goes to ``log``. Errors stop the bench."""
    stats = log.with_suffix(".json")
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.call([sys.executable, str(Path(__file__).resolve()), "--measured", str(stats), "--", *cmd],
                               cwd=cwd, env=stage_env(), stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"large_corpus: {' '.join(map(str, cmd[:3]))} ... failed (exit {code}); see {log}:\n{tail}")
    return json.loads(stats.read_text())


def stage_env() -> dict[str, str]:
    """The stages' environment: the repository on PYTHONPATH, the venv's bin on PATH, C locale."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["LC_ALL"] = "C"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


# ----------------------------------------------------------------------------- generated data


def wav_header(samples: int) -> bytes:
    """The 44-byte RIFF header of a mono 16-bit PCM WAV file at 16 kHz."""
    data = 2 * samples
    return (b"RIFF" + (36 + data).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
            + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + SAMPLE_RATE.to_bytes(4, "little")
            + (2 * SAMPLE_RATE).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
            + b"data" + data.to_bytes(4, "little"))


def write_kaldi_dir(root: Path, name: str, n_utts: int, per_spk: int, noise: np.ndarray) -> list[str]:
    """``root/<name>/{wav.scp,utt2spk,spk2utt}`` and one distinct 0.2 s WAV per utterance; returns the ids."""
    from spkpeft.io.datadir import write_data_dir

    samples = int(SECONDS * SAMPLE_RATE)
    header = wav_header(samples)
    audio = root / "audio" / name
    wav: dict[str, str] = {}
    for i in range(n_utts):
        spk = f"{name}{i // per_spk:05d}"
        if i % per_spk == 0:
            (audio / spk).mkdir(parents=True, exist_ok=True)
        path = audio / spk / f"{spk}-{i:07d}.wav"
        with open(path, "wb") as handle:  # a distinct window of shared noise: distinct files, no RNG per file
            handle.write(header + noise[i % (noise.size - samples):][:samples].tobytes())
        wav[path.stem] = str(path)
    write_data_dir(root / name, wav, {utt: utt.split("-")[0] for utt in wav})
    return list(wav)


def random_trials(utts: Sequence[str], n_trials: int, per_spk: int, rng: np.random.Generator,
                  target_fraction: float = TARGET_FRACTION) -> list[str]:
    """``n_trials`` distinct ``utt1 utt2 target|nontarget`` lines in ``LC_ALL=C`` order; about
    ``target_fraction`` of the draws pair an utterance with one of its speaker's (``utts`` are grouped
    by speaker, ``per_spk`` consecutive ids each), the others with any utterance."""
    n = len(utts)
    if n_trials > n * (n - 1) // 4:
        raise SystemExit(f"large_corpus: {n_trials} trials are too many for {n} utterances")
    pairs: dict[tuple[int, int], bool] = {}
    while len(pairs) < n_trials:
        k = n_trials - len(pairs)
        a = rng.integers(0, n, size=k)
        b_same = np.minimum((a // per_spk) * per_spk + rng.integers(0, per_spk, size=k), n - 1)
        b = np.where(rng.random(k) < target_fraction, b_same, rng.integers(0, n, size=k))
        for x, y in zip(a.tolist(), b.tolist()):
            if x != y:
                pairs.setdefault((x, y), x // per_spk == y // per_spk)
    lines = [f"{utts[x]} {utts[y]} {'target' if t else 'nontarget'}" for (x, y), t in pairs.items()]
    return sorted(lines[:n_trials], key=lambda line: line.encode())


def write_embeddings(path: Path, utts: Sequence[str], dim: int, rng: np.random.Generator,
                     speaker_of: Sequence[int]) -> None:
    """Random embeddings ``path.{ark,scp}``: a per-speaker centre plus noise (so targets score higher)."""
    import kaldiio

    speakers = max(speaker_of) + 1
    centres = rng.standard_normal((speakers, dim)).astype(np.float32)
    vectors = centres[np.asarray(speaker_of)] + rng.standard_normal((len(utts), dim)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as writer:
        for utt, vec in zip(utts, vectors):
            writer(utt, vec)


# ----------------------------------------------------------------------------- sections


def prep_one(work: Path, n: int, nj: int) -> dict:
    """Stages 1 and 2 on a generated ``n``-utterance Kaldi training directory."""
    root = work / f"prep_{n}"
    noise = np.random.default_rng(n).integers(-3000, 3000, size=65536, dtype=np.int16)
    start = time.perf_counter()
    write_kaldi_dir(root, "train", n, UTTS_PER_TRAIN_SPK, noise)
    test = write_kaldi_dir(root, "test", max(MIN_TEST_UTTS, n // 10), UTTS_PER_TEST_SPK, noise)
    (root / "trials").write_text("".join(line + "\n" for line in
                                         random_trials(test, n, UTTS_PER_TEST_SPK, np.random.default_rng(n))))
    generate_s = time.perf_counter() - start
    out = root / "data"
    stage1 = measure(["bash", "local/prepare_kaldi_dir.sh", "--train-dir", str(root / "train"), str(root / "test"),
                      str(root / "trials"), str(out)], root / "stage1.log")
    stage2 = measure([sys.executable, "-m", "spkpeft.bin.validate_data_dir", "--task", "sv", "--nj", str(nj),
                      str(out)], root / "stage2.log")
    return {"n": n, "n_files": n + len(test), "n_trials": n, "generate_s": generate_s,
            "stage1": stage1, "stage2": stage2}


def score_one(work: Path, n: int, args: argparse.Namespace) -> dict:
    """Stage 5 on ``trials_per_utt * n`` trials over ``n / 5`` test utterances, mean + S-norm + AS-norm."""
    root = work / f"score_{n}"
    rng = np.random.default_rng(n)
    start = time.perf_counter()
    n_test = max(MIN_TEST_UTTS, n // 5)
    test = [f"t{i // UTTS_PER_TEST_SPK:05d}-{i:07d}" for i in range(n_test)]
    write_embeddings(root / "test", test, args.dim, rng, [i // UTTS_PER_TEST_SPK for i in range(n_test)])
    n_cohort = 2 * args.cohort_speakers
    cohort = [f"c{i // 2:05d}-{i:07d}" for i in range(n_cohort)]
    write_embeddings(root / "train", cohort, args.dim, rng, [i // 2 for i in range(n_cohort)])
    (root / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in cohort))
    n_trials = args.trials_per_utt * n
    trials = root / "trials" / "big"
    trials.parent.mkdir(parents=True, exist_ok=True)
    trials.write_text("".join(line + "\n" for line in random_trials(test, n_trials, UTTS_PER_TEST_SPK, rng)))
    generate_s = time.perf_counter() - start
    stage5 = measure([sys.executable, "-m", "spkpeft.bin.score", "--embeddings", str(root / "test.scp"),
                      "--trials", str(trials), "--mean", str(root / "train.scp"), "--cohort", str(root / "train.scp"),
                      "--cohort-utt2spk", str(root / "utt2spk"), "--top-n", str(args.top_n),
                      "--score-dir", str(root / "scores"), "--results", str(root / "results.json")],
                     root / "stage5.log")
    results = json.loads((root / "results.json").read_text())
    if [r["norm"] for r in results] != ["none", "snorm", "asnorm"] or results[0]["n_trials"] != n_trials:
        raise SystemExit(f"large_corpus: unexpected {root / 'results.json'}")
    return {"n": n, "n_trials": n_trials, "n_test_utts": n_test, "cohort_speakers": args.cohort_speakers,
            "top_n": args.top_n, "generate_s": generate_s, "stage5": stage5,
            "eer_pct": {r["norm"]: r["eer_pct"] for r in results}}


def train_tiny_exp(work: Path, noise: np.ndarray) -> Path:
    """A 1-epoch ``conf/sv/mini.yaml`` experiment on ``random:tiny_wavlm`` (64 files of 0.2 s; untimed)."""
    root = work / "extract_train"
    write_kaldi_dir(root, "train", 64, 8, noise)
    overlay = root / "overlay.yaml"
    overlay.write_text("train:\n  epochs: 1\n  warmup_epochs: 0.0\n"
                       "data:\n  crop_seconds: 0.2\n  batch_size: 16\n  num_workers: 0\n"
                       "task:\n  val_speakers: 2\n  val_max_seconds: 0.2\n"
                       "extract:\n  checkpoint: last\n")
    exp = root / "exp"
    measure([sys.executable, "-m", "spkpeft.bin.train", "--config", "conf/sv/mini.yaml", "--overlay", str(overlay),
             "--data", str(root / "train"), "--exp", str(exp)], root / "train.log")
    return exp


def copy_exp(exp: Path, dest: Path, shard_size: int) -> Path:
    """A copy of the trained experiment without embeddings (each extraction run gets its own), its
    ``extract.shard_size`` set to ``shard_size`` (the extract section plays no part in training)."""
    import yaml

    shutil.copytree(exp, dest, ignore=shutil.ignore_patterns("embeddings", "log"))
    config = yaml.safe_load((dest / "config.yaml").read_text())
    config.setdefault("extract", {})["shard_size"] = shard_size
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def killed_run(cmd: Sequence[str], parts: Path, kill_at: int) -> tuple[float, int]:
    """Start ``cmd``; SIGKILL its process group once ``kill_at`` shards (``parts/*.scp``) exist.

    Returns (wall seconds until the kill, CPU seconds of the killed process, shards written); exits
    when the run ends first."""
    start, cpu = time.perf_counter(), children_cpu_s()
    with subprocess.Popen(list(cmd), cwd=REPO, env=stage_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True) as proc:
        while len(list(parts.glob("*.scp"))) < kill_at:
            if proc.poll() is not None:
                raise SystemExit(f"large_corpus: extraction ended (exit {proc.returncode}) before {kill_at} "
                                 "shards were written; use more --extract-utts or a smaller --shard-size")
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return time.perf_counter() - start, children_cpu_s() - cpu, len(list(parts.glob("*.scp")))


def children_cpu_s() -> float:
    """User + system seconds of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def extract_resume(work: Path, args: argparse.Namespace) -> dict:
    """Stage 4 uninterrupted, killed at half of its shards, and resumed; the embeddings must agree."""
    from spkpeft.tasks.sv.scoring import load_embeddings

    noise = np.random.default_rng(7).integers(-3000, 3000, size=65536, dtype=np.int16)
    exp = args.exp.resolve() if args.exp else train_tiny_exp(work, noise)
    data = work / "extract_data"
    utts = write_kaldi_dir(data, "test", args.extract_utts, UTTS_PER_TEST_SPK, noise)
    n_shards = -(-len(utts) // args.shard_size)

    def extract_cmd(e: Path) -> list[str]:
        return [sys.executable, "-m", "spkpeft.bin.extract", "--exp", str(e), "--data", str(data / "test"),
                "--device", "cpu"]

    whole = copy_exp(exp, work / "exp_whole", args.shard_size)
    straight = measure(extract_cmd(whole), work / "extract_whole.log")
    broken = copy_exp(exp, work / "exp_killed", args.shard_size)
    killed_s, killed_cpu_s, shards_before = killed_run(extract_cmd(broken), broken / "embeddings" / "test" / "parts",
                                         max(1, n_shards // 2))
    resumed = measure(extract_cmd(broken), work / "extract_resumed.log")
    first = load_embeddings([whole / "embeddings" / "test" / "xvector.scp"])
    again = load_embeddings([broken / "embeddings" / "test" / "xvector.scp"])
    equal = sorted(first) == sorted(again) and all(np.array_equal(first[u], again[u]) for u in first)
    if not equal:
        raise SystemExit("large_corpus: resumed embeddings differ from the uninterrupted run")
    model = (f"the experiment `{args.exp}`" if args.exp else
             "`random:tiny_wavlm` (`conf/sv/mini.yaml`, 1 epoch)")
    return {"n_utts": len(utts), "model": model, "shard_size": args.shard_size, "n_shards": n_shards, "straight": straight,
            "killed_s": killed_s, "killed_cpu_s": killed_cpu_s, "shards_before_kill": shards_before,
            "resumed": resumed, "lost_s": killed_s + resumed["wall_s"] - straight["wall_s"],
            "lost_cpu_s": killed_cpu_s + resumed["cpu_s"] - straight["cpu_s"], "identical": equal}


# ----------------------------------------------------------------------------- report


def growth(rows: list[dict], stage: str, key: str) -> str:
    """``t(n_max) / t(n_min)`` of ``rows`` (sorted by size) for ``stage``'s ``key``."""
    return f"{rows[-1][stage][key] / max(rows[0][stage][key], 1e-9):.1f}"


def stage_rows(rows: list[dict], stages: Sequence[tuple[str, str]], size_key: str) -> list[str]:
    """Markdown rows ``| stage | n | wall | cpu | peak |`` plus a growth row per stage."""
    out = []
    ideal = rows[-1][size_key] / rows[0][size_key]
    for stage, label in stages:
        for row in rows:
            m = row[stage]
            out.append(f"| {label} | {row[size_key]:,} | {m['wall_s']:.1f} | {m['cpu_s']:.1f} | "
                       f"{m['peak_rss_mb']:.0f} |")
        if len(rows) > 1:
            peak = rows[-1][stage]["peak_rss_mb"] / max(rows[0][stage]["peak_rss_mb"], 1e-9)
            out.append(f"| {label}: growth {rows[0][size_key]:,} -> {rows[-1][size_key]:,} (ideal {ideal:.1f}) | | "
                       f"{growth(rows, stage, 'wall_s')} | {growth(rows, stage, 'cpu_s')} | {peak:.1f} |")
    return out


def slope_line(rows: list[dict], stage: str, size_key: str, unit: str) -> str:
    """CPU seconds per ``unit`` more items between consecutive sizes: equal for linear growth, rising
    when a stage grows faster (fixed costs such as start-up cancel out, unlike in the growth factor)."""
    steps = []
    for small, large in zip(rows, rows[1:]):
        extra = large[size_key] - small[size_key]
        slope = (large[stage]["cpu_s"] - small[stage]["cpu_s"]) / extra * unit
        steps.append(f"{small[size_key]:,} -> {large[size_key]:,}: {slope:.2f} s")
    return f"- {stage}: CPU seconds per {unit:,} more: " + ", ".join(steps)


def section_rows(results: dict, section: str) -> list[dict]:
    """The measurements of a section as a list (``extract_resume`` has one)."""
    value = results.get(section, [])
    return value if isinstance(value, list) else [value]


def report(results: dict, command: str) -> str:
    """The Markdown section."""
    commands = results.get("commands", {})
    runs = [f"`{cmd}` ({', '.join(s for s in SECTIONS if commands.get(s) == cmd)})"
            for cmd in dict.fromkeys(commands[s] for s in SECTIONS if s in commands)]
    lines = ["## Large-corpus dry runs", "", f"{'; '.join(runs) or f'`{command}`'} (see its docstring).", "",
             "Times are noisy: a 2-core machine shared with other jobs; compare the growth factors "
             "(same run, same load) and CPU seconds rather than wall-clock seconds.  Wall and CPU seconds "
             "of the stage's process tree; peak = the largest resident set of one process of the tree.  "
             "Growth rows: the largest size's value over the smallest's, in each column (ideal: the size "
             "ratio; less when start-up costs weigh); the CPU seconds per added item below each table "
             "stay flat when a stage grows linearly.", ""]
    header = ["| stage | n | wall s | CPU s | peak RSS MB |", "|---|---:|---:|---:|---:|"]
    if "prep" in results:
        rows = results["prep"]
        lines += ["### Stages 1-2: Kaldi directory of n utterances (0.2 s WAV files)", "",
                  f"Training directory of n utterances ({UTTS_PER_TRAIN_SPK} per speaker), test directory of "
                  f"n / 10, n trials; `--nj {rows[0]['nj']}`.  Generating the files (untimed above): "
                  + ", ".join(f"{r['generate_s']:.0f} s at {r['n']:,}" for r in rows) + ".", ""]
        lines += header + stage_rows(rows, [("stage1", "stage 1 prepare"), ("stage2", "stage 2 validate")], "n")
        if len(rows) > 1:
            lines += ["", *(slope_line(rows, s, "n", 10000) for s in ("stage1", "stage2"))]
        lines.append("")
    if "score" in results:
        rows = results["score"]
        r = rows[-1]
        lines += ["### Stage 5: cosine scoring with S-norm and AS-norm", "",
                  f"n trials over n / {r['n_trials'] // r['n_test_utts']} test utterances ({r['n_test_utts']:,} "
                  f"at the largest n; random {r['dim']}-dim embeddings), a cohort of "
                  f"{r['cohort_speakers']:,} speakers (2 utterances each), AS-norm top-{r['top_n']}; mean "
                  "subtraction, raw + S-norm + AS-norm score files and metrics.", ""]
        lines += header + stage_rows(rows, [("stage5", "stage 5 score")], "n_trials")
        if len(rows) > 1:
            lines += ["", slope_line(rows, "stage5", "n_trials", 100000)]
        lines.append("")
    if "extract_resume" in results:
        e = results["extract_resume"]
        lines += ["### Stage 4: extraction killed and resumed", "",
                  f"{e['n_utts']:,} utterances of 0.2 s, {e['model']}, "
                  f"shards of {e['shard_size']} ({e['n_shards']} shards); SIGKILL of the whole process group once "
                  f"{e['shards_before_kill']} shards were written, then the same command again.", "",
                  "| run | wall s | CPU s | peak RSS MB |", "|---|---:|---:|---:|",
                  f"| uninterrupted | {e['straight']['wall_s']:.1f} | {e['straight']['cpu_s']:.1f} | "
                  f"{e['straight']['peak_rss_mb']:.0f} |",
                  f"| killed after {e['shards_before_kill']} shards | {e['killed_s']:.1f} | {e['killed_cpu_s']:.1f} | |",
                  f"| resumed | {e['resumed']['wall_s']:.1f} | {e['resumed']['cpu_s']:.1f} | "
                  f"{e['resumed']['peak_rss_mb']:.0f} |", "",
                  f"Time lost to the kill (killed + resumed - uninterrupted: the second model load and the shard "
                  f"in flight): {e['lost_cpu_s']:.1f} CPU s ({e['lost_s']:.1f} s of wall clock, the noisier "
                  f"measure); resumed embeddings identical to the uninterrupted run: "
                  f"{'yes' if e['identical'] else 'NO'}.", ""]
    loads = [r["loadavg_1min"] for s in SECTIONS for r in section_rows(results, s) if "loadavg_1min" in r]
    lines += ["Machine:", "", f"- CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} usable cores"]
    if loads:
        lines.append(f"- 1-minute load average after each measurement: {min(loads):.1f} to {max(loads):.1f}")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"corpus sizes n (default {FULL['sizes']}; --quick {QUICK['sizes']})")
    parser.add_argument("--nj", type=int, default=2, help="--nj of stages 1-2")
    parser.add_argument("--trials-per-utt", type=int, default=None, help="score: trials = this * n")
    parser.add_argument("--dim", type=int, default=192, help="score: embedding dimension")
    parser.add_argument("--cohort-speakers", type=int, default=None)
    parser.add_argument("--top-n", type=int, default=None, help="AS-norm top-N")
    parser.add_argument("--extract-utts", type=int, default=None)
    parser.add_argument("--shard-size", type=int, default=None, help="extract.shard_size of the extraction run")
    parser.add_argument("--exp", type=Path, default=None,
                        help="extract_resume: a trained sv experiment to extract with (default: train a tiny one)")
    parser.add_argument("--quick", action="store_true", help="tiny defaults (tests): " + json.dumps(QUICK))
    parser.add_argument("--render-only", action="store_true", help="only write the report of --results")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated data here (default: temp)")
    parser.add_argument("--results", type=Path, default=None,
                        help="write the raw numbers as JSON; sections in it that are not run now are kept")
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"), help="Markdown file ('': print only)")
    parser.add_argument("--section", default="large_corpus", help="section of --doc to write")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.sizes = sorted(args.sizes)
    if args.render_only and (args.results is None or not args.results.is_file()):
        parser.error("--render-only needs an existing --results file")
    return args


def run_sections(args: argparse.Namespace, work: Path) -> dict:
    """Every selected section; the raw numbers."""
    results: dict = {}
    for section in args.sections:
        start = time.perf_counter()
        if section == "prep":
            results["prep"] = [{**prep_one(work, n, args.nj), "nj": args.nj, "loadavg_1min": os.getloadavg()[0]}
                               for n in args.sizes]
        elif section == "score":
            results["score"] = [{**score_one(work, n, args), "dim": args.dim, "loadavg_1min": os.getloadavg()[0]}
                                for n in args.sizes]
        else:
            results["extract_resume"] = {**extract_resume(work, args), "loadavg_1min": os.getloadavg()[0]}
        print(f"large_corpus: {section} done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 3 and sys.argv[1] == "--measured":  # --measured OUT -- CMD...
        return measured_child(sys.argv[4:], Path(sys.argv[2]))
    args = parse_args(argv)
    command = "bench/large_corpus.py " + " ".join(sys.argv[1:] if argv is None else argv)
    earlier = json.loads(args.results.read_text()) if args.results and args.results.is_file() else {}
    if args.render_only:
        results = earlier
    else:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            results = run_sections(args, args.workdir.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="large_corpus.") as tmp:
                results = run_sections(args, Path(tmp))
        kept = [s for s in SECTIONS if s in earlier and s not in args.sections]  # from the earlier run
        results.update({s: earlier[s] for s in kept})
        results["commands"] = {**{s: earlier["commands"][s] for s in kept if s in earlier.get("commands", {})},
                               **{s: command for s in args.sections}}
    if args.results:
        args.results.write_text(json.dumps(results, indent=1) + "\n")
    text = report(results, command)
    print(text)
    if args.doc:
        update_section(Path(args.doc), args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
