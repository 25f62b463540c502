"""Schools: the third kind of user the assistant serves.

A school passes on its own link (`?start=school_<code>` on the web chat, the same deep link
on Telegram) and a printed poster with its QR code; conversations started from it carry the
school, and the steps they reach are kept as anonymous counts per school (the funnel) for
the report the district's education office compiles.

`registry` holds the schools (CSV import, checked whole first), `links` and `poster` make
what a school hands out, `funnel` counts the steps, `report` sums them up.
"""
