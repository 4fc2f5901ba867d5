"""bank: transfers between accounts; every read sees the whole, constant total.

Ops: ``transfer`` (value ``{"from": a, "to": b, "amount": n}``, ok value
True = moved, False = refused for lack of funds) and ``read`` (ok value:
account -> balance). Checked by `crdb_py.jepsen.checkers.bank`: every `ok`
read sums to `accounts * balance`, no balance is negative, no account is
missing or unexpected.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen.checkers import bank
from crdb_py.jepsen.client import BankClient
from crdb_py.jepsen.history import History, Op
from crdb_py.jepsen.workloads.base import GenOp, Verdict, verdict_of

__all__ = ["BankWorkload"]


class BankWorkload:
    name = "bank"
    key_kind = "bank"

    def __init__(self, accounts: int = 5, balance: int = 100, max_transfer: int = 30,
                 read_fraction: float = 0.3) -> None:
        self.accounts = accounts
        self.balance = balance
        self.max_transfer = max_transfer
        self.read_fraction = read_fraction
        self.key_range = accounts

    @property
    def total(self) -> int:
        return self.accounts * self.balance

    def setup(self, client: BankClient) -> None:
        client.bank_setup({a: self.balance for a in range(self.accounts)})

    def generate(self, rng: random.Random) -> GenOp:
        if rng.random() < self.read_fraction:
            return GenOp("read")
        a, b = rng.sample(range(self.accounts), 2)
        return GenOp("transfer", {"from": a, "to": b, "amount": rng.randint(1, self.max_transfer)})

    def apply(self, client: BankClient, op: GenOp) -> Any:
        if op.f == "read":
            return client.read_balances()
        v = op.value
        return client.transfer(v["from"], v["to"], v["amount"])

    def final_ops(self) -> Sequence[GenOp]:
        return [GenOp("read")]

    def check(self, history: History | Sequence[Op]) -> Verdict:
        return verdict_of(bank.check(history, total=self.total, accounts=range(self.accounts)))
