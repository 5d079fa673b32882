/*
 * seed.c — `temel seed` for the catalog: 280 demo products (40 in each of the
 * seven categories of migration 0010) with tr/en/pl names. Deterministic:
 * the same names, prices and stock every time, keyed by SKU (YG-cc-nnn), and
 * idempotent: a product whose SKU exists is left alone.
 */
#include "core/timeutil.h"
#include "core/uuid.h"
#include "db/db.h"
#include "modules/catalog/catalog.h"

#include "core/banned.h"

struct tri {
    const char *tr, *en, *pl;
};

static const struct {
    const char *slug;
    struct tri items[5];
    int64_t base_price[5]; /* minor units for 500 g of the classic kind */
} seed_cats[] = {
    {"sut-urunleri",
     {{"Beyaz Peynir", "White Cheese", "Biały ser"},
      {"Kaşar Peyniri", "Kashar Cheese", "Ser kaszkawał"},
      {"Tereyağı", "Butter", "Masło"},
      {"Süzme Yoğurt", "Strained Yogurt", "Jogurt odcedzany"},
      {"Tulum Peyniri", "Tulum Cheese", "Ser tulum"}},
     {18900, 22900, 27900, 8900, 24900}},
    {"bakliyat",
     {{"Kırmızı Mercimek", "Red Lentils", "Czerwona soczewica"},
      {"Nohut", "Chickpeas", "Ciecierzyca"},
      {"Kuru Fasulye", "Dried Beans", "Fasola sucha"},
      {"Bulgur", "Bulgur", "Bulgur"},
      {"Baldo Pirinç", "Baldo Rice", "Ryż baldo"}},
     {4900, 5900, 6900, 3900, 6400}},
    {"et-urunleri",
     {{"Sucuk", "Turkish Sausage", "Kiełbasa sucuk"},
      {"Pastırma", "Pastirma", "Pastırma"},
      {"Kavurma", "Braised Meat", "Duszone mięso"},
      {"Köfte", "Meatballs", "Klopsiki"},
      {"Dana Salam", "Beef Salami", "Salami wołowe"}},
     {32900, 54900, 47900, 29900, 19900}},
    {"salca-ve-ezmeler",
     {{"Domates Salçası", "Tomato Paste", "Koncentrat pomidorowy"},
      {"Biber Salçası", "Pepper Paste", "Pasta paprykowa"},
      {"Tahin", "Tahini", "Tahini"},
      {"Üzüm Pekmezi", "Grape Molasses", "Melasa winogronowa"},
      {"Acı Ezme", "Spicy Pepper Spread", "Pikantna pasta paprykowa"}},
     {5900, 6900, 9900, 8900, 7400}},
    {"unlu-mamuller",
     {{"Simit", "Sesame Bagel", "Obwarzanek simit"},
      {"Yufka", "Yufka Dough", "Ciasto yufka"},
      {"Kete", "Kete Pastry", "Bułka kete"},
      {"Galeta", "Breadsticks", "Paluszki chlebowe"},
      {"Bazlama", "Bazlama Flatbread", "Chlebek bazlama"}},
     {2900, 4400, 3900, 2400, 3400}},
    {"zeytinler",
     {{"Siyah Zeytin", "Black Olives", "Czarne oliwki"},
      {"Yeşil Zeytin", "Green Olives", "Zielone oliwki"},
      {"Kırma Zeytin", "Cracked Olives", "Oliwki łamane"},
      {"Zeytinyağı", "Olive Oil", "Oliwa z oliwek"},
      {"Zeytin Ezmesi", "Olive Paste", "Pasta z oliwek"}},
     {13900, 12900, 11900, 39900, 9900}},
    {"diger-urunler",
     {{"Çiçek Balı", "Flower Honey", "Miód kwiatowy"},
      {"Lokum", "Turkish Delight", "Rachatłukum"},
      {"Siyah Çay", "Black Tea", "Czarna herbata"},
      {"Kuru İncir", "Dried Figs", "Suszone figi"},
      {"Fındık", "Hazelnuts", "Orzechy laskowe"}},
     {34900, 14900, 17900, 21900, 29900}},
};

static const struct tri kinds[2] = {{"Klasik", "Classic", "klasyczny"}, {"Köy", "Village", "wiejski"}};
static const struct {
    const char *label;
    int64_t per_mille; /* price relative to 500 g */
} sizes[4] = {{"250 g", 550}, {"500 g", 1000}, {"1 kg", 1900}, {"2 kg", 3600}};

#define SEED_PER_CATEGORY 40

static void i18n3(struct buf *b, const char *tr, const char *en, const char *pl)
{
    struct jw w;
    buf_reset(b);
    jw_init(&w, b);
    jw_obj_begin(&w);
    jw_key(&w, "tr");
    jw_cstr(&w, tr);
    jw_key(&w, "en");
    jw_cstr(&w, en);
    jw_key(&w, "pl");
    jw_cstr(&w, pl);
    jw_obj_end(&w);
}

struct seed_ctx {
    int64_t inserted;
};

static int tx_seed(struct db *db, void *arg)
{
    struct seed_ctx *c = arg;
    struct buf name = BUF_INIT(1024), desc = BUF_INIT(2048), tr = BUF_INIT(512), en = BUF_INIT(512),
               pl = BUF_INIT(512), sku = BUF_INIT(64);
    int64_t now = time_now_ms(), total = (int64_t)ARRAY_LEN(seed_cats) * SEED_PER_CATEGORY, k = 0;
    int rc = DB_OK;
    c->inserted = 0;
    for (size_t ci = 0; ci < ARRAY_LEN(seed_cats) && rc == DB_OK; ci++) {
        for (int n = 0; n < SEED_PER_CATEGORY && rc == DB_OK; n++, k++) {
            int item = n % 5, kind = (n / 5) % 2, size = (n / 10) % 4;
            const struct tri *it = &seed_cats[ci].items[item];
            int64_t price = seed_cats[ci].base_price[item] * sizes[size].per_mille / 1000 * (kind ? 12 : 10) / 10;
            int64_t stock = (k * 37 + 11) % 9 == 0 ? 0 : (k * 53 + 7) % 120 + 1;
            char id[UUID_STR_LEN + 1];
            int64_t changed = 0;
            price = price / 100 * 100 + 90; /* shop prices end in ,90 */
            buf_reset(&tr);
            buf_reset(&en);
            buf_reset(&pl);
            (void)buf_printf(&tr, "%s %s %s", kinds[kind].tr, it->tr, sizes[size].label);
            (void)buf_printf(&en, "%s %s %s", kinds[kind].en, it->en, sizes[size].label);
            (void)buf_printf(&pl, "%s %s %s", it->pl, kinds[kind].pl, sizes[size].label);
            i18n3(&name, buf_cstr(&tr), buf_cstr(&en), buf_cstr(&pl));
            buf_reset(&tr);
            buf_reset(&en);
            buf_reset(&pl);
            (void)buf_printf(&tr, "Yayla Gıda %s, %s paket. Doğal ve katkısız.", it->tr, sizes[size].label);
            (void)buf_printf(&en, "Yayla Gıda %s, %s pack. Natural, no additives.", it->en, sizes[size].label);
            (void)buf_printf(&pl, "Yayla Gıda %s, opakowanie %s. Naturalne, bez dodatków.", it->pl, sizes[size].label);
            i18n3(&desc, buf_cstr(&tr), buf_cstr(&en), buf_cstr(&pl));
            buf_reset(&sku);
            (void)buf_printf(&sku, "YG-%02zu-%03d", ci + 1, n + 1);
            if (!buf_ok(&name) || !buf_ok(&desc) || !buf_ok(&sku)) {
                rc = DB_ERR;
                break;
            }
            uuid7_str(id);
            /* older products first: the newest-first default order lists the last seeded on top */
            rc = db_exec(db,
                         "INSERT INTO catalog_products (id, version, category, sku, name, description, price, currency, "
                         "stock, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, ?, 'TRY', ?, ms_ts(?), ms_ts(?)) "
                         "ON CONFLICT (sku) DO NOTHING",
                         DB_ARGS(DBA_CSTR(id), DBA_CSTR(seed_cats[ci].slug), DBA_TEXT(buf_str(&sku)),
                                 DBA_TEXT(buf_str(&name)), DBA_TEXT(buf_str(&desc)), DBA_INT(price), DBA_INT(stock),
                                 DBA_INT(now - total + k), DBA_INT(now - total + k)),
                         &changed);
            c->inserted += changed;
        }
    }
    buf_free(&name);
    buf_free(&desc);
    buf_free(&tr);
    buf_free(&en);
    buf_free(&pl);
    buf_free(&sku);
    return rc;
}

int catalog__seed(struct db *db, struct buf *out)
{
    struct seed_ctx c = {0};
    int rc = db_tx(db, DB_TX_WRITE, tx_seed, &c);
    if (rc != DB_OK) {
        (void)buf_printf(out, "catalog: %s", db_errmsg(db));
        return -1;
    }
    (void)buf_printf(out, "catalog: 7 categories, %d demo products (%lld new)\n",
                     (int)ARRAY_LEN(seed_cats) * SEED_PER_CATEGORY, (long long)c.inserted);
    return 0;
}
