"""The staff console: accounts, login, sessions, CSRF, lockout and the audit log, on the
web chat's aiohttp server under `/staff`.

`auth` holds the accounts and sessions (tables `staff`, `staff_session`, `staff_audit`),
`web` the pages' machinery (login, logout, the base template, a `page` decorator that
refuses without a session or a valid CSRF token). Features (the hotline's tickets and
handoffs, the schools' pages) add their own pages and menu entries to one `Console`.
"""
