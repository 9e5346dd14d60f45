"""Shopify's products and customers exports: a category per variant SKU, marketing consent per customer.

Products export: one row per variant (and per extra image); product-level fields (``Type``, ``Product
Category``, ``Tags``) are filled on a product's first row only, so they are taken per ``Handle``.
Customers export: only the email (hashed at once) and the consent column are read; names, addresses
and phones are never touched.
"""

from __future__ import annotations

import pandas as pd

from data_contracts.imports.pseudonyms import normalise_emails, pseudonymise
from data_contracts.imports.result import require_columns
from data_contracts.imports.values import parse_bools, text

PRODUCTS_SOURCE = "Shopify products export"
CUSTOMERS_SOURCE = "Shopify customers export"
# Newer exports call it "Accepts Email Marketing", older ones "Accepts Marketing".
CONSENT_COLUMNS = ("Accepts Email Marketing", "Accepts Marketing")


def product_category(type_: pd.Series, taxonomy: pd.Series, tags: pd.Series) -> pd.Series:
    """``Type``, else the finest segment of ``Product Category`` ('Apparel > Shirts' -> 'Shirts'), else the first tag."""
    finest = text(taxonomy).str.split(">").str[-1].str.strip()
    first_tag = text(tags).str.split(",").str[0].str.strip()
    return text(type_).fillna(text(finest)).fillna(text(first_tag))


def categories_by_sku(products: pd.DataFrame) -> dict[str, str]:
    """Variant SKU -> category (first product wins for a SKU listed twice); SKUs without a category left out."""
    require_columns(products, ("Handle", "Variant SKU"), PRODUCTS_SOURCE,
                    "expected Shopify's products export: Admin > Products > Export")
    handle = text(products["Handle"]).ffill()

    def per_product(column: str) -> pd.Series:
        values = text(products[column]) if column in products.columns else pd.Series(None, index=products.index)
        return values.groupby(handle).transform("first")

    category = product_category(per_product("Type"), per_product("Product Category"), per_product("Tags"))
    frame = pd.DataFrame({"sku": text(products["Variant SKU"]), "category": category}).dropna()
    frame = frame.drop_duplicates("sku", keep="first")
    return dict(zip(frame["sku"], frame["category"]))


def consent_by_customer(customers: pd.DataFrame, salt: bytes) -> pd.Series:
    """customer_id (salted hash of the email) -> marketing consent, from the customers export."""
    require_columns(customers, ("Email",), CUSTOMERS_SOURCE, "expected Shopify's customers export: Admin > Customers > Export")
    column = next((c for c in CONSENT_COLUMNS if c in customers.columns), None)
    if column is None:
        require_columns(customers, CONSENT_COLUMNS[:1], CUSTOMERS_SOURCE, "the consent column is what it is read for")
    ids = pseudonymise(normalise_emails(customers["Email"]), salt)
    consent = pd.Series(parse_bools(customers[column]).to_numpy(), index=ids.to_numpy())
    consent = consent[consent.index.notna() & consent.notna().to_numpy()]
    return consent[~consent.index.duplicated(keep="last")]
