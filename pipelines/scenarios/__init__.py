"""Generated loyalty programs (scenarios): coffee (the built-in sample), grocery, webshop."""
