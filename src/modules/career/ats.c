/*
 * ats.c — the deterministic ATS scorer (ats.h). Pure functions over
 * strings; the skill dictionary is sorted once (pthread_once) for lookups.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/json.h"
#include "modules/career/ats.h"

#include "core/banned.h"

/* ---- lists ---- */

static void list_push(struct ats_list *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, st_mult(l->cap, sizeof(*l->v)));
    }
    l->v[l->n++] = xstrndup(s, n);
}

void ats_list_free(struct ats_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

bool ats_list_has(const struct ats_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ---- normalisation ---- */

/* Decode one UTF-8 code point at s[*i]; invalid bytes give U+FFFD (one byte). */
static uint32_t utf8_next(str_t s, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s.p + *i;
    size_t left = s.len - *i;
    uint32_t c = p[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (size_t)n > left) {
        (*i)++;
        return 0xFFFD;
    }
    if (n > 1) {
        c &= 0x3Fu >> (n - 1);
        for (int k = 1; k < n; k++) {
            if ((p[k] & 0xC0) != 0x80) {
                (*i)++;
                return 0xFFFD;
            }
            c = (c << 6) | (p[k] & 0x3F);
        }
        if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF ||
            (c >= 0xD800 && c <= 0xDFFF)) {
            (*i)++;
            return 0xFFFD;
        }
    }
    *i += (size_t)n;
    return c;
}

static void utf8_put(struct buf *b, uint32_t c)
{
    if (c < 0x80) {
        (void)buf_putc(b, (char)c);
    } else if (c < 0x800) {
        (void)buf_putc(b, (char)(0xC0 | (c >> 6)));
        (void)buf_putc(b, (char)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        (void)buf_putc(b, (char)(0xE0 | (c >> 12)));
        (void)buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3F)));
        (void)buf_putc(b, (char)(0x80 | (c & 0x3F)));
    } else {
        (void)buf_putc(b, (char)(0xF0 | (c >> 18)));
        (void)buf_putc(b, (char)(0x80 | ((c >> 12) & 0x3F)));
        (void)buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3F)));
        (void)buf_putc(b, (char)(0x80 | (c & 0x3F)));
    }
}

/* Lower-case c; lang decides the capital I (ı in Turkish, i otherwise).
 * İ is i in both; the dotless ı stays ı (key() folds it for matching). */
static uint32_t lower(uint32_t c, enum ats_lang lang)
{
    if (c == 'I')
        return lang == ATS_LANG_TR ? 0x131 : 'i';
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c == 0x130) /* İ */
        return 'i';
    if (c == 0x131)
        return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) /* Latin-1 capitals: Ç Ö Ü ... */
        return c + 32;
    /* Latin Extended-A: capital/small pairs (Ğ ğ, Ş ş, ...) */
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c | 1;
    if (c >= 0x139 && c <= 0x148)
        return (c & 1) ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x179 && c <= 0x17E)
        return (c & 1) ? c + 1 : c;
    return c;
}

/* The matching form of a lower-case code point: the dotted and dotless i are
 * one letter, because a text does not reliably say which one it meant. */
static uint32_t key(uint32_t c)
{
    return c == 0x131 ? 'i' : c;
}

void ats_normalize(str_t s, struct buf *out)
{
    size_t i = 0;
    while (i < s.len) {
        uint32_t c = utf8_next(s, &i);
        if (c != 0x307) /* combining dot above ("i̇" from lower-casing İ elsewhere) */
            utf8_put(out, key(lower(c, ATS_LANG_EN)));
    }
}

/* Turkish when its own letters (ı İ ğ Ğ ş Ş) are at least 1 in 50 letters:
 * a Turkish text has them in ~8% of its letters, an English one of a few
 * lines that names İstanbul once stays English. */
enum ats_lang ats_detect_lang(str_t text)
{
    size_t i = 0, letters = 0, tr = 0;
    if (text.len > ATS_MAX_TEXT)
        text.len = ATS_MAX_TEXT;
    while (i < text.len) {
        uint32_t c = utf8_next(text, &i);
        if (c == 0x130 || c == 0x131 || c == 0x11E || c == 0x11F || c == 0x15E || c == 0x15F)
            tr++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0xC0))
            continue;
        letters++;
    }
    return tr && tr * 50 >= letters ? ATS_LANG_TR : ATS_LANG_EN;
}

static bool is_word_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (c == 0xD7 || c == 0xF7 || c == 0xFFFD)
        return false;
    if (c < 0xC0 || (c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F))
        return false; /* Latin-1 punctuation, general punctuation, symbols, arrows, CJK punctuation */
    return true;
}

static bool is_alpha_cp(uint32_t c) { return is_word_cp(c) && !(c >= '0' && c <= '9'); }

/* ---- stop words (written as spelled; normalised when sorted) ---- */

static const char *const stop_words[] = {
    /* English function words */
    "a", "about", "above", "across", "after", "again", "against", "all", "almost", "along", "already", "also",
    "although", "always", "am", "among", "an", "and", "another", "any", "anyone", "anything", "are", "around", "as",
    "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cannot",
    "could", "did", "do", "does", "doing", "done", "down", "during", "each", "either", "else", "enough", "etc",
    "even", "ever", "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "least",
    "less", "many", "may", "me", "might", "more", "most", "much", "must", "my", "neither", "never", "no", "nor",
    "not", "now", "of", "off", "often", "on", "once", "one", "only", "onto", "or", "other", "others", "otherwise",
    "our", "ours", "out", "over", "own", "per", "plus", "rather", "same", "several", "shall", "she", "should",
    "since", "so", "some", "something", "still", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "therefore", "these", "they", "this", "those", "though", "three", "through",
    "thus", "to", "together", "too", "toward", "towards", "two", "under", "unless", "until", "up", "upon", "us",
    "very", "via", "was", "we", "well", "were", "what", "whatever", "when", "where", "whether", "which", "while",
    "who", "whole", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your",
    "yours",
    /* English job-ad filler: generic verbs, time words, praise — never a keyword */
    "ability", "able", "apply", "based", "benefits", "best", "build", "candidate", "candidates", "closely", "company",
    "day", "days", "daily", "deliver", "environment", "excellent", "experience", "experienced", "familiar",
    "familiarity", "fast", "get", "good", "great", "help", "ideal", "including", "join", "job", "knowledge", "like",
    "looking", "love", "make", "monthly", "need", "needs", "new", "offer", "opportunity", "part", "passionate",
    "people", "position", "preferably", "preferred", "proficiency", "proficient", "required", "requirement",
    "requirements", "responsibilities", "responsible", "role", "run", "running", "runs", "skill", "skills",
    "strong", "take", "team", "teams", "time", "tune", "tuning", "understanding", "use", "used", "using", "want",
    "way", "week", "weekly", "work", "working", "works", "world", "write", "writing", "year", "years", "nice",
    "bonus", "advantage", "ideally", "desirable", "mandatory", "essential", "qualifications", "must-have",
    "behind", "beside", "besides", "beyond", "inside", "outside", "near", "next", "whose", "anywhere",
    /* Turkish function words */
    "acaba", "ait", "altı", "ama", "ancak", "artık", "aslında", "az", "bana", "bazen", "bazı", "belki", "ben",
    "benden", "beni", "benim", "beri", "bile", "bir", "birçok", "biri", "birkaç", "birlikte", "birşey", "biz",
    "bize", "bizden", "bizi", "bizim", "böyle", "bu", "buna", "bunda", "bundan", "bunlar", "bunları", "bunların",
    "bunu", "bunun", "burada", "çok", "çünkü", "da", "daha", "dahi", "dahil", "de", "defa", "değil", "diğer",
    "diye", "dolayı", "en", "gibi", "göre", "halen", "hangi", "hatta", "hem", "henüz", "hep", "hepsi", "her",
    "herhangi", "herkes", "hiç", "hiçbir", "için", "ile", "ilgili", "ise", "işte", "itibaren", "kadar", "karşın",
    "kendi", "kendine", "ki", "kim", "kime", "kimi", "kimse", "mı", "mi", "mu", "mü", "nasıl", "ne", "neden",
    "nedenle", "nerde", "nerede", "nereye", "niye", "niçin", "o", "olan", "olarak", "oldu", "olduğu",
    "olduğunu", "olmak", "olmalı", "olmayan", "olmaz", "olsa", "olup", "olur", "ona", "ondan", "onlar",
    "onların", "onu", "onun", "öyle", "pek", "rağmen", "sadece", "sanki", "sen", "siz", "sonra", "şey", "şöyle",
    "şu", "şunu", "tarafından", "tüm", "üzere", "ve", "veya", "ya", "yada", "yani", "yerine", "yine", "yoksa",
    "zaten",
    /* Turkish job-ad filler */
    "aday", "adaylar", "adayı", "alanında", "aramaktayız", "aranan", "arıyoruz", "avantaj", "avantajdır", "artı",
    "bilen", "bilgi", "bilgisi", "bilgisine", "bünyemizde", "çalışacak", "çalışma", "çalışmak", "deneyim",
    "deneyimi", "deneyimli", "düzeyde", "edilir", "ekibimize", "ekip", "firmamız", "gereken", "gerekli",
    "gereklidir", "gün", "günlük", "haftalık", "hakim", "hâkim", "iş", "işe", "iyi", "katılacak", "konusunda",
    "nitelikler", "olmazsa", "olmazsa", "pozisyon", "pozisyonu", "sahibi", "sahip", "şart", "şirketimiz",
    "tercih", "tercihen", "yapabilen", "yıl", "yıllık", "zorunlu", "derecede", "seviyede", "arkadaş",
    "arkadaşlar", "yürütecek", "yapacak", "alacak", "sorumlu", "görev", "görevi", "sorumluluklar",
};

/* The stop words normalised (as words are) and sorted once, for bsearch:
 * a linear scan per word made a 60 KB text cost ~10 ms. */
static char *g_stop[ARRAY_LEN(stop_words)];
static pthread_once_t g_stop_once = PTHREAD_ONCE_INIT;

static void build_stop_words(void)
{
    for (size_t i = 0; i < ARRAY_LEN(stop_words); i++) {
        struct buf b = BUF_INIT(256);
        ats_normalize(str_c(stop_words[i]), &b);
        g_stop[i] = buf_detach(&b, NULL);
    }
    qsort(g_stop, ARRAY_LEN(g_stop), sizeof(g_stop[0]), cmp_str);
}

bool ats_is_stop_word(const char *w)
{
    pthread_once(&g_stop_once, build_stop_words);
    return bsearch(&w, g_stop, ARRAY_LEN(g_stop), sizeof(g_stop[0]), cmp_str) != NULL;
}

/* ---- splitting a text into words ----
 * Each word has its display form (lower-cased by the text's language) and
 * its key (the matching form, ats_normalize's), and the number of the
 * sentence it is in. A sentence ends at . ! ? ; : or a line end; a sentence
 * that ends with ':' or is a line of at most 3 words is a heading, whose
 * marker (required/preferred) holds until the next heading or a blank line. */

struct words {
    struct ats_list key, disp;
    int *sent; /* per word */
    size_t cap;
    int nsent;
    unsigned char *heading, *para_end; /* per sentence: a heading (1 ':', 2 short line); a blank line follows */
    size_t scap;
};

static void words_free(struct words *w)
{
    ats_list_free(&w->key);
    ats_list_free(&w->disp);
    free(w->sent);
    free(w->heading);
    free(w->para_end);
    memset(w, 0, sizeof(*w));
}

/* One-letter words are dropped, except digits ("3 years"). */
static void word_end(struct words *w, struct buf *k, struct buf *d)
{
    if (k->len && buf_ok(k) && buf_ok(d) && !(utf8_len(d->ptr, d->len) == 1 && !(k->ptr[0] >= '0' && k->ptr[0] <= '9'))) {
        if (w->key.n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 64;
            w->sent = xrealloc(w->sent, st_mult(w->cap, sizeof(int)));
        }
        w->sent[w->key.n] = w->nsent;
        list_push(&w->key, k->ptr, k->len);
        list_push(&w->disp, d->ptr, d->len);
    }
    buf_reset(k);
    buf_reset(d);
}

/* Close the current sentence (if it has words); heading: 1 when it ended with
 * ':', 2 when it is a short line of its own. */
static void sentence_end(struct words *w, int heading, size_t *first_word)
{
    size_t n = w->key.n - *first_word;
    if (n == 0)
        return;
    if ((size_t)w->nsent == w->scap) {
        w->scap = w->scap ? w->scap * 2 : 16;
        w->heading = xrealloc(w->heading, w->scap);
        w->para_end = xrealloc(w->para_end, w->scap);
    }
    w->heading[w->nsent] = (unsigned char)heading;
    w->para_end[w->nsent] = 0;
    w->nsent++;
    *first_word = w->key.n;
}

static void words_split(str_t text, struct words *w)
{
    struct buf k = BUF_INIT(256), d = BUF_INIT(256);
    enum ats_lang lang = ats_detect_lang(text);
    size_t i = 0, first = 0, line_words = 0, line_start = 0;
    int newlines = 0;
    memset(w, 0, sizeof(*w));
    if (text.len > ATS_MAX_TEXT)
        text.len = ATS_MAX_TEXT;
    while (i < text.len) {
        uint32_t raw = utf8_next(text, &i), c = lower(raw, lang);
        if (c == 0x307)
            continue; /* combining dot above */
        if (c != '\n' && c != ' ' && c != '\t' && c != '\r')
            newlines = 0;
        if (is_word_cp(c) || (k.len && (c == '+' || c == '#'))) { /* c++, c# */
            utf8_put(&k, key(c));
            utf8_put(&d, c);
            continue;
        }
        if (k.len && c == '.' && i < text.len) { /* node.js: '.' between letters */
            size_t j = i;
            uint32_t next = lower(utf8_next(text, &j), lang);
            if (is_alpha_cp(next) && is_alpha_cp((unsigned char)k.ptr[k.len - 1])) {
                utf8_put(&k, c);
                utf8_put(&d, c);
                continue;
            }
        }
        word_end(w, &k, &d);
        if (c == '.' || c == '!' || c == '?' || c == ';' || c == ':') {
            sentence_end(w, c == ':', &first);
        } else if (c == '\n') {
            line_words = w->key.n - line_start;
            if (w->key.n > first && line_words <= 3 && first <= line_start)
                sentence_end(w, 2, &first); /* a short line of its own: a heading if it has a marker */
            sentence_end(w, 0, &first);
            line_start = w->key.n;
            if (++newlines == 2 && w->nsent)
                w->para_end[w->nsent - 1] = 1;
        }
    }
    word_end(w, &k, &d);
    sentence_end(w, 0, &first);
    buf_free(&k);
    buf_free(&d);
}

void ats_tokenize(str_t text, bool keep_stop, struct ats_list *out)
{
    struct words w;
    words_split(text, &w);
    for (size_t i = 0; i < w.key.n; i++)
        if (keep_stop || !ats_is_stop_word(w.key.v[i]))
            list_push(out, w.key.v[i], strlen(w.key.v[i]));
    words_free(&w);
}

/* ---- the skill dictionary: canonical name, then '|'-separated aliases
 * (normalised forms; multi-word aliases are matched as word sequences) ---- */

static const char *const skills[][2] = {
    {"Python", "python"}, {"Java", "java"}, {"JavaScript", "javascript|js|ecmascript"},
    {"TypeScript", "typescript|ts"}, {"C++", "c++|cpp"}, {"C#", "c#|csharp"}, {"Go", "golang"},
    {"Rust", "rust"}, {"Ruby", "ruby"}, {"PHP", "php"}, {"Kotlin", "kotlin"}, {"Swift", "swift"},
    {"Scala", "scala"}, {"SQL", "sql"}, {"PostgreSQL", "postgresql|postgres"}, {"MySQL", "mysql"},
    {"SQLite", "sqlite"}, {"MongoDB", "mongodb|mongo"}, {"Redis", "redis"}, {"Elasticsearch", "elasticsearch"},
    {"Kafka", "kafka"}, {"RabbitMQ", "rabbitmq"}, {"Docker", "docker"}, {"Kubernetes", "kubernetes|k8s"},
    {"Terraform", "terraform"}, {"Ansible", "ansible"}, {"AWS", "aws|amazon web services"}, {"Azure", "azure"},
    {"GCP", "gcp|google cloud"}, {"Linux", "linux"}, {"Git", "git"}, {"CI/CD", "ci/cd|cicd|ci cd"},
    {"Jenkins", "jenkins"}, {"React", "react|reactjs|react.js"}, {"Vue", "vue|vuejs|vue.js"},
    {"Angular", "angular"}, {"Node.js", "node.js|nodejs|node"}, {"Django", "django"}, {"Flask", "flask"},
    {"FastAPI", "fastapi"}, {"Spring", "spring|spring boot"}, {".NET", ".net|dotnet|asp.net"},
    {"HTML", "html|html5"}, {"CSS", "css|css3"}, {"GraphQL", "graphql"}, {"REST", "restful|rest api"},
    {"Microservices", "microservices|mikroservis"}, {"Machine Learning", "machine learning|ml|makine öğrenmesi"},
    {"Deep Learning", "deep learning|derin öğrenme"}, {"TensorFlow", "tensorflow"}, {"PyTorch", "pytorch"},
    {"Pandas", "pandas"}, {"NumPy", "numpy"}, {"Data Analysis", "data analysis|veri analizi"},
    {"Statistics", "statistics|istatistik"}, {"Excel", "excel"}, {"Power BI", "power bi|powerbi"},
    {"Tableau", "tableau"}, {"Figma", "figma"}, {"Photoshop", "photoshop"}, {"UX", "ux|user experience"},
    {"SEO", "seo"}, {"Agile", "agile|çevik"}, {"Scrum", "scrum"}, {"Jira", "jira"},
    {"Project Management", "project management|proje yönetimi"}, {"Testing", "testing|test automation"},
    {"Selenium", "selenium"}, {"Security", "security|güvenlik|cybersecurity"}, {"Networking", "networking|ağ"},
    {"Communication", "communication|iletişim"}, {"Leadership", "leadership|liderlik"},
    {"Teamwork", "teamwork|takım çalışması|ekip çalışması"}, {"English", "english|ingilizce"},
    {"Turkish", "turkish|türkçe"}, {"Accounting", "accounting|muhasebe"}, {"Sales", "sales|satış"},
    {"Marketing", "marketing|pazarlama"}, {"Customer Service", "customer service|müşteri hizmetleri"},
    {"SAP", "sap"}, {"AutoCAD", "autocad"}, {"Embedded", "embedded|gömülü"}, {"iOS", "ios"},
    {"Android", "android"}, {"Flutter", "flutter"}, {"Bash", "bash|shell"}, {"Nginx", "nginx"},
};

struct alias {
    char *text; /* normalised */
    int skill;
    int words;
};
static struct alias *g_alias;
static size_t g_nalias;
static size_t g_skill_order[ARRAY_LEN(skills)]; /* skill indexes by canonical name */
static pthread_once_t g_alias_once = PTHREAD_ONCE_INIT;

static int alias_cmp(const void *a, const void *b)
{
    return strcmp(((const struct alias *)a)->text, ((const struct alias *)b)->text);
}

static void build_aliases(void)
{
    size_t cap = 0;
    for (size_t i = 0; i < ARRAY_LEN(skills); i++)
        for (const char *p = skills[i][1]; *p; p++)
            cap += *p == '|';
    cap += ARRAY_LEN(skills);
    g_alias = xcalloc(cap, sizeof(*g_alias));
    for (size_t i = 0; i < ARRAY_LEN(skills); i++) {
        const char *p = skills[i][1];
        while (*p) {
            const char *e = strchr(p, '|');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            struct buf b = BUF_INIT(256);
            ats_normalize(str_make(p, n), &b);
            struct alias *a = &g_alias[g_nalias++];
            a->text = buf_detach(&b, NULL);
            a->skill = (int)i;
            a->words = 1;
            for (const char *q = a->text; *q; q++)
                a->words += *q == ' ';
            p += n + (e ? 1 : 0);
        }
    }
    qsort(g_alias, g_nalias, sizeof(*g_alias), alias_cmp);
    for (size_t i = 0; i < ARRAY_LEN(skills); i++) { /* insertion sort: ~90 names, once */
        size_t j = i;
        for (; j > 0 && strcmp(skills[g_skill_order[j - 1]][0], skills[i][0]) > 0; j--)
            g_skill_order[j] = g_skill_order[j - 1];
        g_skill_order[j] = i;
    }
}

static int find_alias(const char *s)
{
    struct alias key = {.text = (char *)s};
    const struct alias *a = bsearch(&key, g_alias, g_nalias, sizeof(*g_alias), alias_cmp);
    return a ? a->skill : -1;
}

/* Skills in words (keys, stop words kept): 1- to 3-word sequences. seen[] per
 * skill; optionally word_is_skill[] per word, and skill_at[i] = the skill whose
 * match starts at word i (-1: none). */
static void find_skills(const struct ats_list *words, bool *seen, bool *word_is_skill, int *skill_at)
{
    struct buf g = BUF_INIT(1024);
    pthread_once(&g_alias_once, build_aliases);
    for (size_t i = 0; i < words->n; i++) {
        buf_reset(&g);
        for (size_t k = 0; k < 3 && i + k < words->n; k++) {
            if (k)
                (void)buf_putc(&g, ' ');
            (void)buf_puts(&g, words->v[i + k]);
            if (!buf_ok(&g))
                break;
            int s = find_alias(buf_cstr(&g));
            if (s >= 0) {
                seen[s] = true;
                if (skill_at)
                    skill_at[i] = s;
                for (size_t j = 0; j <= k && word_is_skill; j++)
                    word_is_skill[i + j] = true;
            }
        }
    }
    buf_free(&g);
}

/* ---- analysis ---- */

struct count {
    const char *key, *disp;
    int n;
};

static int count_cmp(const void *a, const void *b)
{
    const struct count *x = a, *y = b;
    if (x->n != y->n)
        return y->n - x->n;
    return strcmp(x->key, y->key);
}

static int kd_cmp(const void *a, const void *b) /* by key, then display */
{
    const struct count *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->disp, y->disp);
}

/* Sentence markers (keys): a skill in a sentence that says "required" counts
 * more, one that says "nice to have" less (ats.h). */
static const char *const required_markers[] = {
    "required", "requirement", "requirements", "require", "requires", "must", "mandatory", "essential",
    "qualifications", "gerekli", "gereklidir", "gereken", "gereksinimler", "zorunlu", "şart", "aranan",
    "nitelikler", "olmazsa"};
static const char *const preferred_markers[] = {
    "preferred", "preferably", "nice", "plus", "bonus", "advantage", "advantageous", "ideally", "desirable",
    "optional", "tercihen", "tercih", "arti", "avantaj", "avantajdir", "avantajli"};

static bool in_set(const char *w, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, set[i]))
            return true;
    return false;
}

/* Per sentence: ATS_SKILL_REQUIRED, _PREFERRED or _PLAIN, headings carried (see words). */
static unsigned char *sentence_modes(const struct words *w)
{
    unsigned char *own = xcalloc((size_t)w->nsent + 1, 1), *mode = xcalloc((size_t)w->nsent + 1, 1);
    for (size_t i = 0; i < w->key.n; i++) {
        unsigned char *m = &own[w->sent[i]];
        if (in_set(w->key.v[i], preferred_markers, ARRAY_LEN(preferred_markers)))
            *m = ATS_SKILL_PREFERRED;
        else if (*m != ATS_SKILL_PREFERRED && in_set(w->key.v[i], required_markers, ARRAY_LEN(required_markers)))
            *m = ATS_SKILL_REQUIRED;
    }
    unsigned char section = ATS_SKILL_PLAIN;
    for (int s = 0; s < w->nsent; s++) {
        if (w->heading[s] == 1 || (w->heading[s] == 2 && own[s])) /* "Requirements:", "Nice to have" */
            section = own[s] ? own[s] : ATS_SKILL_PLAIN;
        mode[s] = own[s] ? own[s] : section;
        if (w->para_end[s])
            section = ATS_SKILL_PLAIN;
    }
    free(own);
    return mode;
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static const char *seniority_of(const struct ats_list *words)
{
    static const char *const lead[] = {"lead", "principal", "head", "staff", "lider", "architect", "mimar"};
    static const char *const senior[] = {"senior", "sr", "kidemli", "experienced", "deneyimli"};
    static const char *const mid[] = {"mid", "intermediate", "orta"};
    static const char *const junior[] = {"junior", "jr", "intern", "internship", "stajyer", "staj", "entry",
                                         "graduate", "mezun", "trainee"};
    int years = -1;
    bool l = false, s = false, m = false, j = false;
    for (size_t i = 0; i < words->n; i++) {
        const char *w = words->v[i];
        for (size_t k = 0; k < ARRAY_LEN(lead); k++)
            l |= !strcmp(w, lead[k]);
        for (size_t k = 0; k < ARRAY_LEN(senior); k++)
            s |= !strcmp(w, senior[k]);
        for (size_t k = 0; k < ARRAY_LEN(mid); k++)
            m |= !strcmp(w, mid[k]);
        for (size_t k = 0; k < ARRAY_LEN(junior); k++)
            j |= !strcmp(w, junior[k]);
        /* "5 years", "5+ years", "3 yil", "3 yillik" */
        if (i + 1 < words->n && (!strcmp(words->v[i + 1], "years") || !strcmp(words->v[i + 1], "yrs") ||
                                 !strcmp(words->v[i + 1], "yil") || !strcmp(words->v[i + 1], "yillik"))) {
            int64_t n;
            str_t ws = str_c(w);
            if (ws.len && ws.p[ws.len - 1] == '+')
                ws.len--;
            if (!parse_i64(ws, 0, 60, &n) && n > years)
                years = (int)n;
        }
    }
    if (l)
        return "lead";
    if (s)
        return "senior";
    if (m)
        return "mid";
    if (j)
        return "junior";
    if (years >= 5)
        return "senior";
    if (years >= 2)
        return "mid";
    if (years >= 0)
        return "junior";
    return "unspecified";
}

/* A word that can be a keyword (and is kept in a resume's profile). */
static bool keyword_word(const char *w)
{
    return !ats_is_stop_word(w) && utf8_len(w, strlen(w)) >= 3 && !all_digits(w);
}

void ats_analyze(str_t text, struct ats_analysis *a)
{
    struct words w;
    bool seen[ARRAY_LEN(skills)] = {false};
    unsigned char kind[ARRAY_LEN(skills)] = {0}; /* the strongest mode a skill was named in */
    memset(a, 0, sizeof(*a));
    words_split(text, &w);
    bool *is_skill = xcalloc(w.key.n + 1, sizeof(bool));
    int *skill_at = xcalloc(w.key.n + 1, sizeof(int));
    for (size_t i = 0; i < w.key.n; i++)
        skill_at[i] = -1;
    find_skills(&w.key, seen, is_skill, skill_at);
    unsigned char *mode = sentence_modes(&w);
    static const int strength[] = {[ATS_SKILL_PLAIN] = 2, [ATS_SKILL_REQUIRED] = 3, [ATS_SKILL_PREFERRED] = 1};
    for (size_t i = 0; i < w.key.n; i++) {
        int k = skill_at[i];
        unsigned char m = mode[w.sent[i]];
        if (k >= 0 && (!kind[k] || strength[m] > strength[kind[k]]))
            kind[k] = m;
    }
    for (size_t o = 0; o < ARRAY_LEN(skills); o++) {
        size_t k = g_skill_order[o];
        if (!seen[k])
            continue;
        const char *name = skills[k][0];
        list_push(&a->skills, name, strlen(name));
        if (kind[k] == ATS_SKILL_REQUIRED)
            list_push(&a->required, name, strlen(name));
        else if (kind[k] == ATS_SKILL_PREFERRED)
            list_push(&a->preferred, name, strlen(name));
    }
    /* keywords: frequent words that are no stop word, skill or number, of 3+
     * characters; counted by key, shown in the text's own spelling */
    struct count *ws = xcalloc(w.key.n + 1, sizeof(*ws)), *c = xcalloc(w.key.n + 1, sizeof(*c));
    size_t nw = 0, nc = 0;
    for (size_t i = 0; i < w.key.n; i++)
        if (!is_skill[i] && keyword_word(w.key.v[i]))
            ws[nw++] = (struct count){w.key.v[i], w.disp.v[i], 1};
    qsort(ws, nw, sizeof(*ws), kd_cmp);
    for (size_t i = 0; i < nw; i++) {
        if (nc && !strcmp(c[nc - 1].key, ws[i].key))
            c[nc - 1].n++;
        else
            c[nc++] = ws[i]; /* the smallest spelling of the key */
    }
    qsort(c, nc, sizeof(*c), count_cmp);
    for (size_t i = 0; i < nc && i < ATS_MAX_KEYWORDS; i++) {
        list_push(&a->keywords, c[i].disp, strlen(c[i].disp));
        list_push(&a->keyword_keys, c[i].key, strlen(c[i].key));
    }
    a->seniority = seniority_of(&w.key);
    free(ws);
    free(c);
    free(mode);
    free(skill_at);
    free(is_skill);
    words_free(&w);
}

void ats_analysis_free(struct ats_analysis *a)
{
    ats_list_free(&a->skills);
    ats_list_free(&a->required);
    ats_list_free(&a->preferred);
    ats_list_free(&a->keywords);
    ats_list_free(&a->keyword_keys);
}

/* ---- profiles ---- */

static void profile_line(struct buf *out, char tag, const char *v)
{
    (void)buf_putc(out, tag);
    (void)buf_putc(out, ' ');
    (void)buf_puts(out, v);
    (void)buf_putc(out, '\n');
}

void ats_profile(str_t text, enum ats_kind kind, struct buf *out)
{
    (void)buf_puts(out, ATS_PROFILE_MAGIC);
    if (kind == ATS_JOB) {
        struct ats_analysis a;
        ats_analyze(text, &a);
        for (size_t i = 0; i < a.skills.n; i++)
            profile_line(out, ats_list_has(&a.required, a.skills.v[i])    ? 'r'
                              : ats_list_has(&a.preferred, a.skills.v[i]) ? 'p'
                                                                          : 's',
                         a.skills.v[i]);
        for (size_t i = 0; i < a.keywords.n; i++) { /* "k <key> <as written>" */
            (void)buf_printf(out, "k %s %s\n", a.keyword_keys.v[i], a.keywords.v[i]);
        }
        ats_analysis_free(&a);
        return;
    }
    struct ats_list words = {0};
    bool seen[ARRAY_LEN(skills)] = {false};
    ats_tokenize(text, true, &words);
    find_skills(&words, seen, NULL, NULL);
    for (size_t o = 0; o < ARRAY_LEN(skills); o++)
        if (seen[g_skill_order[o]])
            profile_line(out, 's', skills[g_skill_order[o]][0]);
    const char **ws = xcalloc(words.n + 1, sizeof(char *));
    size_t nw = 0;
    for (size_t i = 0; i < words.n; i++)
        if (keyword_word(words.v[i]))
            ws[nw++] = words.v[i];
    qsort(ws, nw, sizeof(char *), cmp_str);
    for (size_t i = 0; i < nw; i++)
        if (i == 0 || strcmp(ws[i - 1], ws[i]))
            profile_line(out, 'w', ws[i]);
    free(ws);
    ats_list_free(&words);
}

static int skill_index(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(skills); i++)
        if (!strcmp(skills[i][0], name))
            return (int)i;
    return -1;
}

int ats_doc_load(str_t profile, enum ats_kind kind, struct ats_doc *d)
{
    size_t magic = strlen(ATS_PROFILE_MAGIC), lines = 0;
    memset(d, 0, sizeof(*d));
    if (profile.len < magic || memcmp(profile.p, ATS_PROFILE_MAGIC, magic))
        return -1;
    for (size_t i = magic; i < profile.len; i++)
        lines += profile.p[i] == '\n';
    pthread_once(&g_alias_once, build_aliases);
    d->mem = xstrndup(profile.p + magic, profile.len - magic);
    d->skill = xcalloc(ARRAY_LEN(skills), 1);
    const char **v = xcalloc(lines + 1, sizeof(char *)), **kk = xcalloc(lines + 1, sizeof(char *));
    size_t n = 0;
    char *p = d->mem;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl || nl - p < 3 || p[1] != ' ')
            goto stale; /* a profile always ends with a newline; "t v" lines */
        *nl = '\0';
        char *val = p + 2;
        if (p[0] == 's' || (kind == ATS_JOB && (p[0] == 'r' || p[0] == 'p'))) {
            int k = skill_index(val);
            if (k < 0)
                goto stale;
            d->skill[k] = p[0] == 'r' ? ATS_SKILL_REQUIRED : p[0] == 'p' ? ATS_SKILL_PREFERRED : ATS_SKILL_PLAIN;
        } else if (p[0] == 'k' && kind == ATS_JOB) {
            char *sp = strchr(val, ' ');
            if (!sp)
                goto stale;
            *sp = '\0';
            kk[n] = val; /* n <= lines: one per line */
            v[n++] = sp + 1;
        } else if (p[0] == 'w' && kind == ATS_RESUME) {
            v[n++] = val;
        } else {
            goto stale;
        }
        p = nl + 1;
    }
    if (kind == ATS_JOB) {
        d->kw = v;
        d->kwkey = kk;
        d->nkw = n;
    } else {
        d->words = v;
        d->nwords = n;
        free(kk);
    }
    return 0;
stale:
    free(v);
    free(kk);
    ats_doc_free(d);
    return -1;
}

void ats_doc_free(struct ats_doc *d)
{
    free(d->mem);
    free(d->skill);
    free(d->kw);
    free(d->kwkey);
    free(d->words);
    memset(d, 0, sizeof(*d));
}

void ats_match(const struct ats_doc *resume, const struct ats_doc *job, struct ats_result *res)
{
    int total = 0, got = 0;
    memset(res, 0, sizeof(*res));
    pthread_once(&g_alias_once, build_aliases);
    static const int weight[] = {[ATS_SKILL_PLAIN] = 2, [ATS_SKILL_REQUIRED] = 3, [ATS_SKILL_PREFERRED] = 1};
    for (size_t o = 0; o < ARRAY_LEN(skills); o++) {
        size_t k = g_skill_order[o];
        if (!job->skill || !job->skill[k])
            continue;
        bool have = resume->skill && resume->skill[k];
        list_push(have ? &res->matched_skills : &res->missing_skills, skills[k][0], strlen(skills[k][0]));
        total += weight[job->skill[k]];
        got += have ? weight[job->skill[k]] : 0;
    }
    for (size_t i = 0; i < job->nkw; i++) {
        bool have = bsearch(&job->kwkey[i], resume->words, resume->nwords, sizeof(char *), cmp_str) != NULL;
        list_push(have ? &res->matched_keywords : &res->missing_keywords, job->kw[i], strlen(job->kw[i]));
        total += 1;
        got += have ? 1 : 0;
    }
    res->score = total ? (got * 200 + total) / (total * 2) : 0; /* round half up, integers only */
}

void ats_score(str_t resume_text, str_t job_text, struct ats_result *res)
{
    struct buf rp = BUF_INIT(ATS_MAX_TEXT * 2 + 64), jp = BUF_INIT(ATS_MAX_TEXT * 2 + 64);
    struct ats_doc rd, jd;
    ats_profile(resume_text, ATS_RESUME, &rp);
    ats_profile(job_text, ATS_JOB, &jp);
    if (ats_doc_load(buf_str(&rp), ATS_RESUME, &rd) | ats_doc_load(buf_str(&jp), ATS_JOB, &jd))
        BUG("ats: a fresh profile does not load");
    ats_match(&rd, &jd, res);
    ats_doc_free(&rd);
    ats_doc_free(&jd);
    buf_free(&rp);
    buf_free(&jp);
}

void ats_result_free(struct ats_result *res)
{
    ats_list_free(&res->matched_skills);
    ats_list_free(&res->missing_skills);
    ats_list_free(&res->matched_keywords);
    ats_list_free(&res->missing_keywords);
}
