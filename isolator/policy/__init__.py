"""Operator policy: plugin permissions and grants, the pluggy hooks, the audit log."""
