"""The simulated CI of Statex's app: a test suite that changes over commits, run by Jest and Vitest.

Commits land on `main` on working days. Each push runs the `CI` workflow on GitHub Actions; its test
jobs upload the runner's reports as an artifact `test-report-<runner>-<attempt>`. The suite:

- grows: about 60 tests in 14 files at the start, a few more every week (new files now and then);
- slows: some tests become several times slower at a commit (a heavier fixture, a real timer);
- is flaky: a handful of tests fail now and then on the same code (timers, ports, ordering);
- breaks: for a stretch near the end one test fails on every run (a changed API), until it is fixed;
- carries `it.skip` and `it.todo` tests, which run nowhere and carry no duration.

The team ran Jest alone at first, then Vitest beside it on the same commits while migrating (Jest kept
as the baseline until the end of the simulated period), so the speed of the two is measurable on
the same code. A job whose tests fail is re-run once or twice ("Re-run failed jobs": a new attempt
of the same workflow run, same commit). Vitest writes no coverage when a test fails; Jest does.

Timings: a test's duration under Jest is its Vitest duration times JEST_TEST_FACTOR; each file costs a
runner-specific overhead (module transform and environment); the suite's wall time is the start-up
plus the files spread over WORKERS workers, with run-to-run noise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import numpy as np

from statex_bi.demo.entities import WorldConfig

WORKERS = 2
STARTUP_S = {"vitest": 1.1, "jest": 2.4}
FILE_OVERHEAD_MS = {"vitest": 110.0, "jest": 330.0}
JEST_TEST_FACTOR = 1.25
WALL_NOISE_SD = 0.08  # lognormal sigma of a run's wall time
MIGRATION_START = 0.45  # share of the period after which Vitest runs beside Jest
COMMITS_PER_WORKDAY = 1.0
MAX_ATTEMPTS = 3
FLAKY_TESTS = {  # file, full name -> probability of failing in one run
    ("test/routes/prototypes.test.ts", "POST /prototypes queues the generation job"): 0.02,
    ("test/workers/generation.test.ts", "generation worker times out a stuck model call"): 0.04,
    ("test/billing/stripe-webhook.test.ts", "stripe webhook retries a locked invoice"): 0.015,
    ("test/realtime/progress.test.ts", "progress stream closes the socket after the last event"): 0.03,
}
BROKEN_TEST = ("test/pricing/tiers.test.ts", "tiers routes EU customers to Azure")
BROKEN_SPAN = (0.93, 0.96)  # shares of the period: it fails on every run in between, until someone fixes it
AREAS = ("routes", "workers", "billing", "pricing", "auth", "realtime", "storage", "emails")
SEED_FILES = {
    "test/routes/prototypes.test.ts": ("POST /prototypes", ["queues the generation job", "rejects a bad body",
                                                            "returns 201 with the id"]),
    "test/workers/generation.test.ts": ("generation worker", ["times out a stuck model call",
                                                              "falls back from ollama to openai"]),
    "test/billing/stripe-webhook.test.ts": ("stripe webhook", ["retries a locked invoice", "verifies signatures"]),
    "test/realtime/progress.test.ts": ("progress stream", ["closes the socket after the last event",
                                                           "sends a heartbeat"]),
    "test/pricing/tiers.test.ts": ("tiers", ["routes EU customers to Azure", "sends small prototypes to ollama"]),
}


@dataclass
class SimTest:
    file: str
    ancestors: tuple[str, ...]
    title: str
    base_ms: float
    added: int  # commit index
    slow_from: int | None = None
    slow_factor: float = 1.0
    mode: str = "run"  # run | skip | todo
    fail_p: float = 0.0

    @property
    def full_name(self) -> str:
        return " ".join([*self.ancestors, self.title])


@dataclass(frozen=True)
class CaseResult:
    test: int  # index into CiData.tests
    status: str  # passed | failed | skipped | todo
    duration_ms: float | None


@dataclass(frozen=True)
class SuiteRun:
    """One run of the suite by one runner: what its reports and run.json say."""

    runner: str
    sha: str
    branch: str
    attempt: int
    started_at: datetime
    wall_s: float
    results: tuple[CaseResult, ...]
    coverage: dict[str, tuple[int, int]] | None  # metric -> (total, covered); None: no summary written

    @property
    def exit_code(self) -> int:
        return 1 if any(result.status == "failed" for result in self.results) else 0


@dataclass
class Attempt:
    number: int
    started_at: datetime
    updated_at: datetime
    conclusion: str
    suite_runs: list[SuiteRun] = field(default_factory=list)


@dataclass
class WorkflowRun:
    run_id: int
    run_number: int
    sha: str
    branch: str
    created_at: datetime
    attempts: list[Attempt]


@dataclass
class CiData:
    tests: list[SimTest]
    runs: list[WorkflowRun]  # oldest first


def _sha(seed: int, index: int) -> str:
    return hashlib.sha1(f"statex-app-{seed}-{index}".encode()).hexdigest()


def _commit_times(config: WorldConfig, rng: np.random.Generator) -> list[datetime]:
    times = []
    for day in config.days():
        if day.weekday() >= 5:
            continue
        for _ in range(rng.poisson(COMMITS_PER_WORKDAY)):
            times.append(datetime.combine(day, time(8)) + timedelta(minutes=float(rng.uniform(0, 600))))
    return sorted(times)


def _suite(rng: np.random.Generator, commits: int) -> list[SimTest]:
    """Every test that ever exists, with the commit that adds it and its later changes."""
    tests: list[SimTest] = []

    def duration() -> float:
        return float(np.clip(rng.lognormal(np.log(18), 1.0), 0.3, 900))

    for file, (describe, titles) in SEED_FILES.items():
        for title in titles:
            tests.append(SimTest(file, (describe,), title, duration(), 0, fail_p=FLAKY_TESTS.get(
                (file, f"{describe} {title}"), 0.0)))
    files = list(SEED_FILES)
    for i in range(9):
        files.append(f"test/{AREAS[i % len(AREAS)]}/module-{i + 1}.test.ts")
    for index in range(commits // 4 + 40):
        added = 0 if index < 40 else int(rng.integers(1, commits))
        if added and rng.random() < 0.06:
            files.append(f"test/{AREAS[int(rng.integers(len(AREAS)))]}/feature-{len(files) + 1}.test.ts")
        file = files[-1] if added and rng.random() < 0.3 else files[int(rng.integers(len(files)))]
        stem = file.rsplit("/", 1)[-1].removesuffix(".test.ts")
        nested = rng.random() < 0.3
        ancestors = (stem, "edge cases") if nested else (stem,)
        tests.append(SimTest(file, ancestors, f"case {index + 1}", duration(), added))
    tests.sort(key=lambda t: t.added)
    for test in rng.choice(len(tests), size=6, replace=False):
        tests[int(test)].slow_from = int(rng.integers(1, max(2, commits)))
        tests[int(test)].slow_factor = float(rng.uniform(4, 12))
    for position, mode in ((7, "skip"), (23, "todo"), (31, "skip")):
        tests[position].mode = mode
    return tests


def simulate_ci(config: WorldConfig) -> CiData:
    """The workflow runs of the period, with their attempts and suite runs (deterministic from the seed)."""
    rng = config.rng("ci")
    times = _commit_times(config, rng)
    tests = _suite(rng, max(1, len(times)))
    migration = int(len(times) * MIGRATION_START)
    broken = range(int(len(times) * BROKEN_SPAN[0]), int(len(times) * BROKEN_SPAN[1]))
    runs = []
    for index, pushed in enumerate(times):
        sha = _sha(config.seed, index)
        present = [i for i, test in enumerate(tests) if test.added <= index]
        runners = ["jest"] if index < migration else ["jest", "vitest"]
        created = pushed + timedelta(seconds=float(rng.uniform(2, 20)))
        attempts: list[Attempt] = []
        pending = runners
        start = created + timedelta(seconds=float(rng.uniform(5, 40)))
        for number in range(1, MAX_ATTEMPTS + 1):
            suite_runs = []
            for runner in pending:
                suite_runs.append(_suite_run(rng, tests, present, runner, sha, number, start, index,
                                             index in broken, len(times)))
            end = max(run.started_at + timedelta(seconds=run.wall_s) for run in suite_runs)
            end += timedelta(seconds=float(rng.uniform(8, 30)))
            failed = [run.runner for run in suite_runs if run.exit_code]
            attempts.append(Attempt(number, start, end, "failure" if failed else "success", suite_runs))
            if not failed:
                break
            pending = failed
            start = end + timedelta(minutes=float(rng.uniform(2, 45)))
        runs.append(WorkflowRun(9_100_000_000 + index * 7 + int(rng.integers(7)), 1200 + index, sha, "main",
                                created, attempts))
    return CiData(tests, runs)


def _suite_run(rng: np.random.Generator, tests: list[SimTest], present: list[int], runner: str, sha: str,
               attempt: int, start: datetime, commit: int, broken: bool, commits: int) -> SuiteRun:
    results = []
    file_ms: dict[str, float] = {}
    for i in present:
        test = tests[i]
        if test.mode != "run":
            results.append(CaseResult(i, "skipped" if test.mode == "skip" else "todo", None))
            continue
        slow = test.slow_factor if test.slow_from is not None and commit >= test.slow_from else 1.0
        factor = JEST_TEST_FACTOR if runner == "jest" else 1.0
        duration = test.base_ms * slow * factor * float(rng.lognormal(0, 0.15))
        fails = rng.random() < test.fail_p or (broken and (test.file, test.full_name) == BROKEN_TEST)
        results.append(CaseResult(i, "failed" if fails else "passed", round(duration, 3)))
        file_ms[test.file] = file_ms.get(test.file, 0.0) + duration
    files = {tests[i].file for i in present}
    busy_ms = sum(file_ms.values()) + FILE_OVERHEAD_MS[runner] * len(files)
    wall = (STARTUP_S[runner] + busy_ms / 1000 / WORKERS) * float(rng.lognormal(0, WALL_NOISE_SD))
    failed = any(result.status == "failed" for result in results)
    coverage = None if runner == "vitest" and failed else _coverage(commit / max(1, commits - 1), len(present), rng)
    started = start + timedelta(seconds=float(rng.uniform(20, 60)))  # checkout, npm ci
    return SuiteRun(runner, sha, "main", attempt, started, round(wall, 3), tuple(results), coverage)


def _coverage(progress: float, tests: int, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """Coverage totals: the code grows with the suite; the covered share rises from ~68% to ~79% of lines."""
    lines = 900 + tests * 14
    share = 0.68 + 0.11 * progress + float(rng.normal(0, 0.004))
    shares = {"lines": share, "statements": share - 0.006, "functions": share + 0.04, "branches": share - 0.09}
    totals = {"lines": lines, "statements": int(lines * 1.08), "functions": lines // 9, "branches": lines // 3}
    return {metric: (totals[metric], int(totals[metric] * min(0.99, shares[metric]))) for metric in totals}
