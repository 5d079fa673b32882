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

static uint32_t fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c == 0x130 || c == 0x131) /* İ ı → i */
        return 'i';
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

void ats_normalize(str_t s, struct buf *out)
{
    size_t i = 0;
    while (i < s.len)
        utf8_put(out, fold(utf8_next(s, &i)));
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

/* ---- stop words (normalised: ı folded to i) ---- */

static const char *const stop_words[] = {
    /* English */
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "each", "etc", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "just", "looking", "may", "me", "more", "most", "must", "my", "no", "nor", "not",
    "of", "on", "once", "only", "or", "other", "our", "out", "over", "own", "plus", "same", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "us", "very", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "within", "would", "you", "your",
    /* Turkish (ı folded to i) */
    "acaba", "ama", "ancak", "bazi", "belki", "ben", "beni", "benim", "bile", "bir", "biri", "birkaç", "birsey",
    "biz", "bize", "bizim", "bu", "buna", "bunu", "bunun", "da", "daha", "de", "defa", "diye", "en", "gibi",
    "hem", "hep", "hepsi", "her", "hiç", "icin", "için", "ile", "ise", "iste", "kadar", "ki", "kim", "mi", "mu",
    "mü", "mı", "nasil", "ne", "neden", "nerde", "nerede", "niçin", "o", "olan", "olarak", "oldugu", "olduğu",
    "olmak", "olup", "on", "ona", "onlar", "onu", "onun", "sen", "siz", "şey", "şu", "tüm", "ve", "veya", "ya",
    "yani", "yada", "çok", "çünkü", "sahip", "aranan", "ariyoruz", "iyi", "olmali",
    /* job-ad filler in both languages: never a keyword */
    "experience", "year", "years", "work", "working", "team", "job", "role", "position", "company", "candidate",
    "candidates", "required", "requirements", "preferred", "skills", "skill", "knowledge", "ability", "strong",
    "good", "excellent", "new", "join", "including", "using", "deneyim", "yil", "bilgi", "bilgisi", "sahibi",
    "tercih", "edilir", "tercihen", "konusunda", "alaninda", "ekibimize", "pozisyon",
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

/* One-letter words are dropped, except digits ("3 years"). */
static void keep_word(struct buf *w, bool keep_stop, struct ats_list *out)
{
    if (!buf_ok(w) || (w->len == 1 && !(w->ptr[0] >= '0' && w->ptr[0] <= '9')))
        return;
    if (keep_stop || !ats_is_stop_word(w->ptr))
        list_push(out, w->ptr, w->len);
}

void ats_tokenize(str_t text, bool keep_stop, struct ats_list *out)
{
    struct buf norm = BUF_INIT(ATS_MAX_TEXT * 2 + 16), w = BUF_INIT(256);
    if (text.len > ATS_MAX_TEXT)
        text.len = ATS_MAX_TEXT;
    ats_normalize(text, &norm);
    str_t s = buf_str(&norm);
    size_t i = 0;
    while (i < s.len) {
        size_t at = i;
        uint32_t c = utf8_next(s, &i);
        if (is_word_cp(c)) {
            utf8_put(&w, c);
            continue;
        }
        if (w.len && (c == '+' || c == '#')) { /* c++, c# */
            utf8_put(&w, c);
            continue;
        }
        if (w.len && c == '.' && i < s.len) { /* node.js: '.' between letters */
            size_t j = i;
            uint32_t d = utf8_next(s, &j);
            if (is_alpha_cp(d) && is_alpha_cp((unsigned char)w.ptr[w.len - 1])) {
                utf8_put(&w, c);
                continue;
            }
        }
        (void)at;
        if (w.len) {
            keep_word(&w, keep_stop, out);
            buf_reset(&w);
        }
    }
    if (w.len)
        keep_word(&w, keep_stop, out);
    buf_free(&w);
    buf_free(&norm);
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

/* Skills in words (keep_stop tokens): 1- to 3-word sequences. seen[] per skill. */
static void find_skills(const struct ats_list *words, bool *seen, bool *word_is_skill)
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
                for (size_t j = 0; j <= k && word_is_skill; j++)
                    word_is_skill[i + j] = true;
            }
        }
    }
    buf_free(&g);
}

/* ---- analysis ---- */

struct count {
    const char *w;
    int n;
};

static int count_cmp(const void *a, const void *b)
{
    const struct count *x = a, *y = b;
    if (x->n != y->n)
        return y->n - x->n;
    return strcmp(x->w, y->w);
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
    struct ats_list words = {0};
    bool seen[ARRAY_LEN(skills)] = {false};
    memset(a, 0, sizeof(*a));
    ats_tokenize(text, true, &words);
    bool *is_skill = xcalloc(words.n + 1, sizeof(bool));
    find_skills(&words, seen, is_skill);
    for (size_t i = 0; i < ARRAY_LEN(skills); i++)
        if (seen[i])
            list_push(&a->skills, skills[i][0], strlen(skills[i][0]));
    if (a->skills.n > 1)
        qsort(a->skills.v, a->skills.n, sizeof(char *), cmp_str);
    /* keywords: frequent non-stop, non-skill words of 3+ characters */
    struct count *c = xcalloc(words.n + 1, sizeof(*c));
    size_t nc = 0;
    const char **ws = xcalloc(words.n + 1, sizeof(char *));
    size_t nw = 0;
    for (size_t i = 0; i < words.n; i++)
        if (!is_skill[i] && keyword_word(words.v[i]))
            ws[nw++] = words.v[i];
    qsort(ws, nw, sizeof(char *), cmp_str);
    for (size_t i = 0; i < nw; i++) {
        if (nc && !strcmp(c[nc - 1].w, ws[i]))
            c[nc - 1].n++;
        else
            c[nc++] = (struct count){ws[i], 1};
    }
    qsort(c, nc, sizeof(*c), count_cmp);
    for (size_t i = 0; i < nc && i < ATS_MAX_KEYWORDS; i++)
        list_push(&a->keywords, c[i].w, strlen(c[i].w));
    a->seniority = seniority_of(&words);
    free(ws);
    free(c);
    free(is_skill);
    ats_list_free(&words);
}

void ats_analysis_free(struct ats_analysis *a)
{
    ats_list_free(&a->skills);
    ats_list_free(&a->keywords);
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
            profile_line(out, 's', a.skills.v[i]);
        for (size_t i = 0; i < a.keywords.n; i++)
            profile_line(out, 'k', a.keywords.v[i]);
        ats_analysis_free(&a);
        return;
    }
    struct ats_list words = {0};
    bool seen[ARRAY_LEN(skills)] = {false};
    ats_tokenize(text, true, &words);
    find_skills(&words, seen, NULL);
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
    const char **v = xcalloc(lines + 1, sizeof(char *));
    size_t n = 0;
    char *p = d->mem;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl || nl - p < 3 || p[1] != ' ')
            goto stale; /* a profile always ends with a newline; "t v" lines */
        *nl = '\0';
        const char *val = p + 2;
        if (p[0] == 's') {
            int k = skill_index(val);
            if (k < 0)
                goto stale;
            d->skill[k] = 1;
        } else if ((p[0] == 'k' && kind == ATS_JOB) || (p[0] == 'w' && kind == ATS_RESUME)) {
            v[n++] = val; /* n <= lines: one per line */
        } else {
            goto stale;
        }
        p = nl + 1;
    }
    if (kind == ATS_JOB) {
        d->kw = v;
        d->nkw = n;
    } else {
        d->words = v;
        d->nwords = n;
    }
    return 0;
stale:
    free(v);
    ats_doc_free(d);
    return -1;
}

void ats_doc_free(struct ats_doc *d)
{
    free(d->mem);
    free(d->skill);
    free(d->kw);
    free(d->words);
    memset(d, 0, sizeof(*d));
}

void ats_match(const struct ats_doc *resume, const struct ats_doc *job, struct ats_result *res)
{
    int total = 0, got = 0;
    memset(res, 0, sizeof(*res));
    pthread_once(&g_alias_once, build_aliases);
    for (size_t o = 0; o < ARRAY_LEN(skills); o++) {
        size_t k = g_skill_order[o];
        if (!job->skill || !job->skill[k])
            continue;
        bool have = resume->skill && resume->skill[k];
        list_push(have ? &res->matched_skills : &res->missing_skills, skills[k][0], strlen(skills[k][0]));
        total += 2;
        got += have ? 2 : 0;
    }
    for (size_t i = 0; i < job->nkw; i++) {
        bool have = bsearch(&job->kw[i], resume->words, resume->nwords, sizeof(char *), cmp_str) != NULL;
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
