"""Operators: the people who sign in to the console, their roles, sessions and recorded actions."""
