"""Reports: tickets and SLA performance per month, crew and village, as CSV and XLSX."""
