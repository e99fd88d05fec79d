"""`posguard sim`: serve the OKX simulator."""

from __future__ import annotations

from typing import Annotated

import typer

from posguard.cli.common import guarded

SIM_HELP = """Serve an OKX v5-compatible paper exchange on 127.0.0.1 (Ctrl-C stops it).

\b
Point any OKX client at http://127.0.0.1:PORT. Without --account or scenario
accounts there is one demo-trading account "demo" with the fake credentials
  api_key sim-demo-key, secret sim-demo-secret, passphrase sim-demo-passphrase
(send x-simulated-trading: 1, as OKX demo trading requires).

\b
--account NAME=KEY:SECRET:PASSPHRASE adds a demo-trading account (clients send
x-simulated-trading: 1, like ccxt in sandbox mode or python-okx with flag "1");
NAME=KEY:SECRET:PASSPHRASE:live adds a live-mode account (clients send no such
header, like ccxt without sandbox mode or python-okx with flag "0"). A client
whose header does not match the account's mode is refused with 50101, as OKX does.

\b
A scenario (JSON or YAML, or a shipped name: see --list) scripts the exchange:
  name, description, start ("2025-12-20T00:00:00.000Z"),
  clock ("simulated": time moves by POST /__sim__/advance; "wall": it runs),
  seed (candles' random walk), prices {instId: px},
  candle_history {instId: bars that exist},
  accounts [{name, api_key, secret_key, passphrase, demo, pos_mode, acct_lv}],
  leverage [{account, instId, mgnMode, posSide, lever}],
  load {instruments: N, positions: P}: N synthetic swaps SYN000001-USDT-SWAP...
    (ctVal 10, 1 USD) and P open positions of them in every account (load tests),
  steps [{at, action, account, instId, mgnMode, posSide, side, sz, px, lever,
          pos, count}]
    at: ISO-8601 UTC or "+90s", "+2m", "+1h5m" from start
    action: open | close (sz: partial) | liquidate | adl | price | set_leverage
            | pending_orders (count) | registry_write (the bot's own write: pos)
  faults [{endpoint, kind, from, until, account, instId, http, code, msg,
           times, seconds, data}]
    endpoint: positions, positions_history, leverage_info, set_leverage,
              instruments, candles, fills, ... or "*"
    kind: http_error (http, code, msg) | timeout (seconds) | malformed
          | no_data (code "0" with data: absent | null | object | string)
          | rate_limit | lever_empty (instId) | stale (seconds of lag)
          | drop_position (instId: missing from the answers in the window)

\b
Control API (never used by OKX clients): GET /__sim__/state,
POST /__sim__/scenario, /__sim__/advance {"seconds"|"to"|"to_next_step"|
"to_end"}, /__sim__/step {a step}, /__sim__/reset,
GET /__sim__/registry-writes.
"""


def register(app: typer.Typer) -> None:
    @app.command("sim", help=SIM_HELP)
    def sim(
        port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
        scenario: Annotated[
            str | None,
            typer.Option(help="Scenario file (JSON/YAML) or shipped scenario name."),
        ] = None,
        account: Annotated[
            list[str] | None,
            typer.Option(
                help="Extra account NAME=KEY:SECRET:PASSPHRASE[:live] (demo trading unless "
                ":live); repeatable."
            ),
        ] = None,
        list_scenarios: Annotated[
            bool, typer.Option("--list", help="List the shipped scenarios and exit.")
        ] = False,
        check: Annotated[
            bool, typer.Option("--check", help="Validate the scenario and exit.")
        ] = False,
    ) -> None:
        from posguard.sim import SimExchange
        from posguard.sim.cli_support import load_for_cli, parse_account_option
        from posguard.sim.scenario import shipped_scenarios
        from posguard.sim.server import serve_forever

        if list_scenarios:
            for name in shipped_scenarios():
                typer.echo(name)
            return
        loaded = guarded(lambda: load_for_cli(scenario))
        extra = guarded(lambda: [parse_account_option(a) for a in account or []])
        if check:
            typer.echo(f"{scenario}: ok ({len(loaded.steps)} steps, {len(loaded.faults)} faults)")
            return
        exchange = SimExchange(loaded, extra_accounts=extra)
        typer.echo(f"OKX simulator on http://127.0.0.1:{port} (scenario: {loaded.name})")
        for acct in exchange.accounts.values():
            # Simulator credentials are fake by construction; printing them is the point.
            typer.echo(
                f"  account {acct.name}: api_key={acct.api_key} secret={acct.secret_key} "
                f"passphrase={acct.passphrase} demo={acct.demo} posMode={acct.pos_mode}"
            )
        serve_forever(exchange, port)
