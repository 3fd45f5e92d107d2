-- Fixes how values are written and read as text (UTC, ISO dates, exact floats, UTF-8), so archives read the same anywhere: returns the settings.
SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, MDY', false),
       set_config('IntervalStyle', 'postgres', false), set_config('extra_float_digits', '3', false),
       set_config('client_encoding', 'UTF8', false)
