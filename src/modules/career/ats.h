/*
 * ats.h — the deterministic ATS scorer of the career module (API.md §8):
 * tokenising, stop words, keyword and skill extraction, resume-vs-job score.
 * No I/O, no randomness, no locale: the same texts always give the same
 * result, on every machine.
 *
 * Casing: a text is Turkish when ı İ ğ Ğ ş Ş are at least 1 in 50 of its
 * letters (ats_detect_lang). Words are lower-cased by that language — in
 * Turkish I→ı and İ→i, otherwise I→i — and shown that way (keywords).
 * For matching, each word also has a key (ats_normalize) in which the dotted
 * and dotless i are one letter, since a resume may spell either way.
 * Words are runs of letters and digits, plus '+', '#' inside or after a word
 * (c++, c#) and '.' between letters (node.js). Stop words (English and
 * Turkish function words and job-ad filler such as "every", "day", "run",
 * "write", "tune", "deneyim", "aranan") and one-letter words are dropped.
 *
 * Score: the job's terms are its dictionary skills and its most frequent
 * other keywords (at most ATS_MAX_KEYWORDS). A skill named in a sentence
 * that says it is required ("required", "must", "gerekli", "aranan", ... or
 * under such a heading, until a blank line) weighs 3, a plain skill 2, a
 * skill that is only "nice to have" ("plus", "preferred", "tercihen", ...) 1,
 * a keyword 1. score = round(100 × matched weight / total weight), 0 when
 * the job has no terms.
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

enum ats_lang { ATS_LANG_EN, ATS_LANG_TR };
enum ats_lang ats_detect_lang(str_t text);

enum { ATS_SKILL_PLAIN = 1, ATS_SKILL_REQUIRED = 2, ATS_SKILL_PREFERRED = 3 };

struct ats_analysis {
    struct ats_list skills;    /* dictionary skills found, canonical names, sorted */
    struct ats_list required;  /* those of skills named as required (weight 3), sorted */
    struct ats_list preferred; /* those named only as nice to have (weight 1), sorted */
    struct ats_list keywords;  /* other frequent words as written (lower-cased), most frequent first (ties: by key) */
    struct ats_list keyword_keys; /* their keys (ats_normalize), same order */
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
#define ATS_PROFILE_MAGIC "ats2\n"
enum ats_kind { ATS_RESUME, ATS_JOB };
void ats_profile(str_t text, enum ats_kind kind, struct buf *out);

/* A loaded profile (ats_doc_free). */
struct ats_doc {
    char *mem;           /* the profile's copy: the strings below point into it */
    unsigned char *skill; /* per dictionary skill: 0, or ATS_SKILL_* when the document has it */
    const char **kw;     /* ATS_JOB: keywords as shown, most frequent first */
    const char **kwkey;  /* ATS_JOB: their keys */
    size_t nkw;
    const char **words;  /* ATS_RESUME: distinct words (3+ characters, no stop words), sorted */
    size_t nwords;
};
/* 0, or -1 when profile is not a current profile of kind (then *d is empty). */
int ats_doc_load(str_t profile, enum ats_kind kind, struct ats_doc *d) WARN_UNUSED;
void ats_doc_free(struct ats_doc *d);
void ats_match(const struct ats_doc *resume, const struct ats_doc *job, struct ats_result *res);

#endif
