"""`scoter chaos`: kill consumers at random while they work, then prove nothing was lost.

K real consumer processes (`python -m scoter worker scoter.chaos:app`) share one storage URL and
run N tasks of random length: some plain (they ignore stop requests), some checkpointing with
`ctx.resume` or `ctx.checkpoint` and handing themselves back (`Interrupt`) when asked to stop.
A bounded loop SIGTERMs, SIGKILLs and SIGSTOPs/SIGCONTs random consumers (and, with the
process executor, SIGKILLs their children), restarting the ones it ended. Then it waits for
every task to settle and checks, from side effects that scoter knows nothing about:

- G1: every task succeeded (none lost, none dead);
- duplicates: a task completed more than once only when its first completing run's holder was
  SIGKILLed, its child process killed, or it lost its lease: while SIGSTOPped, or while the
  storage took no writes because a SIGSTOPped consumer held its lock (`StallProbe`);
- G2: no attempt started before the previous one let go (per the task's history), and two runs
  of one task overlapped only after such a lease loss; every lease loss has such a cause;
- G5: a released or rescued task is claimed before any younger task; the hand-off delays after
  SIGTERM (release to next start) and SIGKILL (kill to next start); a crashed holder's task is
  queued again within its lease (plus a rescuer tick);
- G6: a SIGTERMed consumer exits 0 within its drain timeout (plus two seconds).

One module a concern, each importing only those listed before it: `tasks` (the chaos tasks and
the records of their runs), `evidence` (the signals sent, the storage stalls, the consumers'
exits), `settings`, `fleet` (the consumer processes), `report` (the findings, their table and
text), `checker` (the rules above), `kill_loop` (the disruptions), `run` (one round, end to end).
"""

from scoter.chaos.report import Report, print_report
from scoter.chaos.run import main, run_chaos
from scoter.chaos.settings import Settings
from scoter.chaos.tasks import app

__all__ = ["Report", "Settings", "app", "main", "print_report", "run_chaos"]
