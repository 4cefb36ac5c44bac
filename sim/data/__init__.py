"""Historical data shipped with coercion-sim (CSV files for comparison figures); see ``README.md`` here."""
