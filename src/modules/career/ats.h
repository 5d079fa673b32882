/*
 * ats.h — the deterministic ATS scorer of the career module (API.md §8):
 * tokenising, stop words, keyword and skill extraction, resume-vs-job score.
 * No I/O, no randomness, no locale: the same texts always give the same
 * result, on every machine.
 *
 * Normalisation (for matching only; output keeps the dictionary spelling):
 * UTF-8 aware lower-casing with Turkish letters (Ş→ş, Ğ→ğ, Ü→ü, Ö→ö, Ç→ç)
 * and the dotted/dotless i folded together (I, İ, ı, i → i), because "I" is
 * "ı" in Turkish and "i" in English and a text does not say which it is.
 * Words are runs of letters and digits, plus '+', '#' inside or after a word
 * (c++, c#) and '.' between letters (node.js). Stop words (Turkish and
 * English) and one-letter words are dropped.
 *
 * Score: the job's terms are its dictionary skills (weight 2) and its most
 * frequent other keywords (weight 1, at most ATS_MAX_KEYWORDS); score =
 * round(100 × matched weight / total weight), 0 when the job has no terms.
 */
#ifndef TEMEL_ATS_H
#define TEMEL_ATS_H

#include "core/buf.h"

#define ATS_MAX_KEYWORDS 15
#define ATS_MAX_TEXT (256u << 10) /* longer inputs are scored on their first 256 KiB */

/* A list of strings (heap; ats_list_free). */
struct ats_list {
    char **v;
    size_t n, cap;
};
void ats_list_free(struct ats_list *l);
bool ats_list_has(const struct ats_list *l, const char *s);

/* Lower-case and fold s as described above into out (appended). */
void ats_normalize(str_t s, struct buf *out);
/* The words of text in order (normalised; stop words dropped unless keep_stop). */
void ats_tokenize(str_t text, bool keep_stop, struct ats_list *out);
bool ats_is_stop_word(const char *normalised_word);

struct ats_analysis {
    struct ats_list skills;   /* dictionary skills found, canonical names, sorted */
    struct ats_list keywords; /* other frequent words, most frequent first (ties: alphabetical) */
    const char *seniority;    /* "junior" | "mid" | "senior" | "lead" | "unspecified" */
};
void ats_analyze(str_t text, struct ats_analysis *a);
void ats_analysis_free(struct ats_analysis *a);

struct ats_result {
    int score; /* 0..100 */
    struct ats_list matched_skills, missing_skills, matched_keywords, missing_keywords;
};
void ats_score(str_t resume_text, str_t job_text, struct ats_result *res);
void ats_result_free(struct ats_result *res);

/* ---- profiles: a document tokenised once, kept beside its row ----
 * A profile is the text that scoring needs from one document (its skills, and
 * a job's keywords or a resume's distinct words), so that scoring a pair is a
 * few look-ups instead of two tokenisations. It starts with ATS_PROFILE_MAGIC
 * (the analyser's version): a profile of another version is stale and is
 * rebuilt from the text. ats_score(a, b) == ats_match(profile(a), profile(b)). */
#define ATS_PROFILE_MAGIC "ats1\n"
enum ats_kind { ATS_RESUME, ATS_JOB };
void ats_profile(str_t text, enum ats_kind kind, struct buf *out);

/* A loaded profile (ats_doc_free). */
struct ats_doc {
    char *mem;           /* the profile's copy: the strings below point into it */
    unsigned char *skill; /* per dictionary skill: 1 when the document has it */
    const char **kw;     /* ATS_JOB: keywords, most frequent first */
    size_t nkw;
    const char **words;  /* ATS_RESUME: distinct words (3+ characters, no stop words), sorted */
    size_t nwords;
};
/* 0, or -1 when profile is not a current profile of kind (then *d is empty). */
int ats_doc_load(str_t profile, enum ats_kind kind, struct ats_doc *d) WARN_UNUSED;
void ats_doc_free(struct ats_doc *d);
void ats_match(const struct ats_doc *resume, const struct ats_doc *job, struct ats_result *res);

#endif
