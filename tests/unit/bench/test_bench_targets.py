"""The bench's verdicts: targets that have no figure fail, the open-loop generator keeps its schedule,
and the exactly-once checks cannot pass for nothing (no lifecycle, no log)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import targets, verify
from bench.load import Driver, Outcome, Plan, Tokens


def result(
    *,
    n: int = 100,
    commands: dict[str, int] | None = None,
    cpu_s: dict[str, float] | None = None,
    mode: str = "closed",
    rate: float | None = None,
    duration: float | None = None,
    lifecycles_per_s: float = 25.0,
    ok: bool = True,
    latency: dict[str, Any] | None = None,
) -> dict[str, Any]:
    commands = (
        {"returns": 1000, "refunds": 1000, "notifications": 1000, "metrics": 1000} if commands is None else commands
    )
    cpu_s = (
        {"returns": 1.0, "refunds": 1.0, "notifications": 1.0, "metrics": 1.0, "mongo": 3.0} if cpu_s is None else cpu_s
    )
    return {
        "run": {
            "run_id": f"r{n}",
            "date": "2026-11-30T14:00:00+00:00",
            "mode": mode,
            "returns": n,
            "completed": n,
            "concurrency": 16 if mode == "closed" else None,
            "rate": rate,
            "duration": duration,
        },
        "ok": ok,
        "lifecycles_failed": 0,
        "throughput": {"lifecycles_per_s": lifecycles_per_s},
        "usage": {"processes": {name: {"cpu_s": s} for name, s in cpu_s.items()}},
        "mongo_commands": {s: {"commands": c} for s, c in commands.items()},
        "latency": latency or {"http": {}, "async": {}},
        "schedule": {"started": n, "late": 0, "late_threshold_ms": 50, "max_late_ms": 1.0, "achieved_rate": rate},
    }


def by_name(found: list[targets.Target], prefix: str) -> targets.Target:
    return next(t for t in found if t.name.startswith(prefix))


def test_cost_targets_pass_and_fail_on_their_figures() -> None:
    found = targets.run_targets(result(n=100))  # 40 commands, 40 ms services, 30 ms store, 25/s
    assert [t.ok for t in found] == [True, True, True, True]
    assert by_name(found, "MongoDB commands").figure == 40
    over = targets.run_targets(result(n=100, commands=dict.fromkeys(targets.SERVICES, 1300), lifecycles_per_s=19.9))
    assert not by_name(over, "MongoDB commands").ok
    assert not by_name(over, "lifecycles/s").ok


def test_a_service_without_a_command_tally_fails_instead_of_counting_zero() -> None:
    found = targets.run_targets(result(commands={"returns": 1000, "refunds": 1000, "notifications": 1000}))
    target = by_name(found, "MongoDB commands")
    assert target.figure is None and not target.ok
    assert "metrics" in target.detail


def test_disputes_runs_beside_the_lifecycle_but_is_shown_not_counted() -> None:
    """Issue 13's figures stay over the four lifecycle services; the disputes service's share is named."""
    commands = dict.fromkeys(targets.SERVICES, 1000) | {"disputes": 300}
    cpu = dict.fromkeys(targets.SERVICES, 1.0) | {"disputes": 0.5, "mongo": 3.0}
    found = targets.run_targets(result(n=100, commands=commands, cpu_s=cpu))
    assert by_name(found, "MongoDB commands").figure == 40
    assert "not counted: disputes 3.0" in by_name(found, "MongoDB commands").detail
    assert by_name(found, "service CPU").figure == 40
    assert "not counted: disputes 5.0" in by_name(found, "service CPU").detail
    assert "disputes" not in by_name(targets.run_targets(result(n=100)), "service CPU").detail


def test_a_store_the_run_did_not_start_has_no_cpu_figure() -> None:
    cpu = {"returns": 1.0, "refunds": 1.0, "notifications": 1.0, "metrics": 1.0, "mongo (shared)": 0.1}
    target = by_name(targets.run_targets(result(cpu_s=cpu)), "embedded-server CPU")
    assert target.figure is None and not target.ok


def test_latency_targets_need_every_sample() -> None:
    def summary(n: int, p99: float) -> dict[str, Any]:
        return {"n": n, "p50_ms": p99 / 2, "p99_ms": p99}

    latency = {
        "http": {targets.POST_LABEL: summary(50, 80)},
        "async": {targets.REFUND_LABEL: summary(49, 1500), targets.EMAIL_LABEL: summary(350, 6000)},
    }
    found = targets.run_targets(result(n=50, mode="open", rate=5, duration=10, latency=latency))
    assert by_name(found, "POST /v1/returns").ok
    refund = by_name(found, "received -> refunded")
    assert not refund.ok and refund.figure is None  # one refund missing: no p99 of the run
    email = by_name(found, "event -> email")
    assert not email.ok and email.figure == 6000
    assert not any(t.name.startswith("lifecycles/s") for t in found)  # an open loop's rate is chosen


def test_late_starts_fail_the_schedule() -> None:
    late = result(n=50, mode="open", rate=5, duration=10)
    late["schedule"]["late"] = 3
    assert not by_name(targets.run_targets(late), "open-loop schedule").ok


def test_flatness_compares_the_larger_n_with_the_smaller() -> None:
    small = result(n=500, lifecycles_per_s=20.0, cpu_s={"mongo": 15.0})  # 30 ms per lifecycle
    flat = result(n=5000, lifecycles_per_s=17.2, cpu_s={"mongo": 160.0})  # 86 %, 32 ms (+6.7 %)
    found, warnings = targets.compare(flat, small)
    assert [t.ok for t in found] == [True, True]
    assert warnings == []
    steep = result(n=5000, lifecycles_per_s=16.9, cpu_s={"mongo": 180.0})  # 84.5 %, 36 ms (+20 %)
    assert [t.ok for t in targets.compare(small, steep)[0]] == [False, False]
    broken = result(n=5000, lifecycles_per_s=30.0, cpu_s={"mongo": 150.0}, ok=False)
    rate, _ = targets.compare(small, broken)[0]
    assert not rate.ok  # a run whose checks failed has no figure to compare


def test_checks_cannot_pass_for_nothing(tmp_path) -> None:
    assert not verify.completion_check(0, 0).ok
    assert not verify.completion_check(100, 99).ok
    assert verify.completion_check(100, 100).ok
    for service in ("returns", "refunds", "notifications", "disputes"):
        (tmp_path / f"{service}.log").write_text('{"level": "INFO", "msg": "up"}\n')
    findings = verify.log_findings(tmp_path)  # metrics.log missing
    assert findings["metrics"]["no log"] == 1
    assert not verify.log_check(findings).ok
    (tmp_path / "metrics.log").write_text('{"level": "INFO", "msg": "up"}\n')
    assert verify.log_check(verify.log_findings(tmp_path)).ok


def test_missing_queues_fail_and_do_not_read_as_empty() -> None:
    missing, dead, waiting = verify.dead_letter_check({"q.inbox": None, "q.dead": 0})
    assert not missing.ok and dead.ok and waiting.ok


def test_open_loop_starts_on_schedule_whatever_the_answers_take() -> None:
    class Slow(Driver):
        async def lifecycle(self, plan: Plan) -> Outcome:
            await asyncio.sleep(1.0)  # every lifecycle takes 1 s: a closed loop of 1 would take 20 s
            return Outcome(plan)

    async def go() -> tuple[list[Outcome], float]:
        driver = Slow({}, Tokens("secret"), None)
        began = time.monotonic()
        outcomes = await driver.run_open([Plan(i, "t", 1, "ledger") for i in range(20)], rate=40)
        await driver.close()
        return outcomes, time.monotonic() - began

    outcomes, took = asyncio.run(go())
    assert took < 2.5  # 20 starts over 0.5 s, each done 1 s later
    assert [o.plan.index for o in outcomes] == list(range(20))
    assert all(o.late_s is not None and o.late_s < 0.2 for o in outcomes)


def test_a_fault_run_that_acknowledged_nothing_does_not_pass() -> None:
    from bench.chaos import verdict

    def run(returns: int, refunds: int) -> dict[str, Any]:
        def bucket(n: int) -> dict[str, Any]:
            return {"expected": n, "lost": 0, "duplicated": 0, "stuck": 0, "missing": 0}

        tally = {k: bucket(returns) for k in ("returns", "payments", "events", "emails")} | {"refunds": bucket(refunds)}
        tally |= {"metrics_off": {}, "queues": {"dead": 0, "waiting": 0, "missing": []}}
        return {"tally": tally, "timing": {"drained_s": 1.0}}

    assert verdict(run(40, 40))
    assert not verdict(run(0, 0))
    assert not verdict(run(40, 0))  # nothing got as far as a refund
