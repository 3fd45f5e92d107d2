"""`cuisine-db dr-drill`: the runbook's Complete Database Failure, rehearsed on a scratch copy (make dr-drill)."""

from __future__ import annotations

from cuisine_db.cli.common import EnvOption, JsonOption, environment, out, print_json, say, settings
from cuisine_db.cli.render import show_findings
from cuisine_db.ops.incident_report import duration


def dr_drill(env: EnvOption = None, json: JsonOption = False) -> None:
    """Restore env's newest full backup into a scratch cluster, replay its WAL archive, verify integrity, all under
    a drill incident; print the recovery time and the data-loss window. env itself is not touched."""
    from cuisine_db.ops import dr_drill as drill
    from cuisine_db.ops.dr_drill import DrillReport

    def show(report: DrillReport) -> None:
        for note in report.notes:
            say(note)
        if json:
            print_json({**{name: getattr(report, name) for name in DrillReport.__slots__}, "ok": report.ok})
        else:
            out.print(f"[bold]Complete Database Failure drill of {report.env}[/] (on {report.scratch}, removed "
                      f"since), incident {report.incident}")
            for step in report.steps:
                out.print(f"  {duration(step.seconds):>8}  make {step.command}", markup=False)
            out.print(f"recovery time: {duration(report.recovery_seconds)} ({report.recovery_seconds:.1f}s, "
                      "incident opened to maintenance mode off)")
            if report.data_loss_seconds is None:
                out.print("data-loss window: unknown (the replay did not say when its last transaction committed)")
            else:
                out.print(f"data-loss window: {duration(report.data_loss_seconds)} "
                          f"({report.data_loss_seconds:.1f}s: the failure at {report.failure_at:%H:%M:%S} UTC, "
                          f"the last transaction recovered at {report.reached_time:%H:%M:%S} UTC, "
                          f"WAL {report.reached_lsn})")
            if report.problems:
                show_findings(report.problems, title=f"integrity of the restored copy of {report.env}")
        say(f"timeline: cuisine-db incident report {report.incident}")

    drill.run(settings(), environment(env), notify=say, show=show)
