"""The reliability harness (issue 9): crash, damage, disk-full, fuzz, soak and isolation checks.

Each part is a module whose logic takes its size as arguments; ``test_*.py`` run small
("smoke") versions in the default ``pytest`` run, and ``python -m tests.reliability`` (tox env
``reliability``) runs the long versions and prints one summary table.  docs/reliability.md.
"""
