"""Market data: providers of historical bars, exchange calendars, validation.

Import providers from :mod:`copilot_quant.data.providers` (``SampleDataProvider``, ``SyntheticDataProvider``,
``CSVDataProvider``, ``ParquetStore``, ``YFinanceProvider``, ``provider_from_spec``); sessions and market
hours from :mod:`copilot_quant.data.calendars`. Every bar frame follows the project's convention: a tz-aware
UTC index of bar-close times and float ``Open, High, Low, Close, Volume`` columns.
"""
