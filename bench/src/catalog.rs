//! `colmena-bench catalog`: the `--catalog FILE` the benchmark's branches boot from.
//!
//! N products `P1…PN`, each with the same stock and a price spread over 1.00–9.99 (integer
//! cents), printed as one line of JSON. Names read like a Peruvian grocery's ("Azúcar rubia
//! Costeño 1 kg", accents included), so the branch's search is measured on text shaped like
//! what a till types, not on `Producto N`. The stock is chosen by the script so that no sale
//! of a run is ever refused (every run asserts zero non-2xx answers).
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of products.
    #[arg(long)]
    products: u32,
    /// Units of each product.
    #[arg(long)]
    stock: i64,
}

/// One entry, in the field order of the branch's catalog seed.
#[derive(Serialize)]
struct Item {
    product_id: String,
    name: String,
    price_cents: i64,
    stock: i64,
}

pub const KINDS: [&str; 30] = [
    "Arroz",
    "Azúcar",
    "Aceite",
    "Leche",
    "Fideos",
    "Atún",
    "Café",
    "Galletas",
    "Yogur",
    "Harina",
    "Avena",
    "Mantequilla",
    "Queso",
    "Jabón",
    "Detergente",
    "Papel higiénico",
    "Gaseosa",
    "Agua",
    "Cerveza",
    "Chocolate",
    "Pan",
    "Huevos",
    "Sal",
    "Mayonesa",
    "Kétchup",
    "Champú",
    "Pasta dental",
    "Lejía",
    "Quinua",
    "Menestra",
];
const VARIANTS: [&str; 20] = [
    "rubia",
    "blanca",
    "extra",
    "integral",
    "light",
    "clásico",
    "premium",
    "del campo",
    "andino",
    "tradicional",
    "sin lactosa",
    "familiar",
    "económico",
    "orgánico",
    "picante",
    "dulce",
    "natural",
    "de fresa",
    "de vainilla",
    "limón",
];
pub const BRANDS: [&str; 20] = [
    "Costeño",
    "Gloria",
    "Laive",
    "Alicorp",
    "Primor",
    "Nestlé",
    "Molitalia",
    "Don Vittorio",
    "Bolívar",
    "Sapolio",
    "Florida",
    "Inka",
    "San Luis",
    "Cielo",
    "Pilsen",
    "Winter's",
    "Tottus",
    "Metro",
    "Vea",
    "Bell's",
];
const SIZES: [&str; 12] = [
    "250 g", "500 g", "1 kg", "2 kg", "5 kg", "400 ml", "1 l", "1.5 l", "3 l", "6 u", "12 u", "24 u",
];

/// The name of product `i`: every combination of kind, variant, brand and size comes once
/// before any repeats (144,000 of them).
pub fn name(i: u32) -> String {
    let i = i as usize;
    let (k, v, b, s) = (
        i % KINDS.len(),
        (i / KINDS.len()) % VARIANTS.len(),
        (i / (KINDS.len() * VARIANTS.len())) % BRANDS.len(),
        (i / (KINDS.len() * VARIANTS.len() * BRANDS.len())) % SIZES.len(),
    );
    format!("{} {} {} {}", KINDS[k], VARIANTS[v], BRANDS[b], SIZES[s])
}

fn catalog(products: u32, stock: i64) -> Vec<Item> {
    (1..=products)
        .map(|i| Item {
            product_id: format!("P{i}"),
            name: name(i),
            price_cents: 100 + (i64::from(i) * 37) % 900,
            stock,
        })
        .collect()
}

pub fn run(a: Args) -> Result<(), String> {
    let json = serde_json::to_string(&catalog(a.products, a.stock)).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use colmena_shared::wire::CatalogSeedItem;

    #[test]
    fn the_catalog_is_one_line_of_products_with_prices_in_cents() {
        let json = serde_json::to_string(&catalog(2, 1_000_000)).unwrap();
        assert_eq!(
            json,
            r#"[{"product_id":"P1","name":"Azúcar rubia Costeño 250 g","price_cents":137,"stock":1000000},{"product_id":"P2","name":"Aceite rubia Costeño 250 g","price_cents":174,"stock":1000000}]"#
        );
    }

    #[test]
    fn the_branch_accepts_the_catalog_as_its_seed() {
        let json = serde_json::to_string(&catalog(100, 1_000_000_000)).unwrap();
        let seed: Vec<CatalogSeedItem> = serde_json::from_str(&json).unwrap();
        assert_eq!(seed.len(), 100);
        assert!(seed.iter().all(|s| (100..1000).contains(&s.price_cents)));
    }
}
