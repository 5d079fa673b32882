/*
 * test_career.c — the career module's pure parts: the ATS scorer
 * (normalisation, Turkish casing, stop words, skills, keywords, scores,
 * profiles) and the application status workflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "modules/career/ats.h"
#include "modules/career/career.h"

#include "core/banned.h"

static void test_ats_normalize_turkish(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(1024);
    ats_normalize(STRLIT("İSTANBUL IŞIK ığdır ŞĞÜÖÇ şğüöç Ärger"), &b);
    assert_string_equal(buf_cstr(&b), "istanbul işik iğdir şğüöç şğüöç ärger");
    buf_free(&b);
    struct ats_list l = {0};
    ats_tokenize(STRLIT("C++ ve C# ile Node.js, İngilizce; the API."), false, &l);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.v[0], "c++");
    assert_string_equal(l.v[1], "c#");
    assert_string_equal(l.v[2], "node.js");
    assert_string_equal(l.v[3], "ingilizce");
    assert_string_equal(l.v[4], "api");
    ats_list_free(&l);
    /* invalid UTF-8 is a separator, never a crash */
    ats_tokenize(STRLIT("py\xffthon \xc3"), false, &l);
    assert_int_equal(l.n, 2);
    ats_list_free(&l);
}

static void test_ats_analyze(void **state)
{
    (void)state;
    struct ats_analysis a;
    ats_analyze(STRLIT("Senior Python developer: Django, PostgreSQL, Docker and Kubernetes on AWS. "
                       "Python, Python, microservices. Payments payments."),
                &a);
    assert_int_equal(a.skills.n, 7);
    assert_string_equal(a.skills.v[0], "AWS");
    assert_string_equal(a.skills.v[6], "Python");
    assert_string_equal(a.seniority, "senior");
    assert_true(a.keywords.n >= 1);
    assert_string_equal(a.keywords.v[0], "payments"); /* the most frequent non-skill word */
    ats_analysis_free(&a);
    ats_analyze(STRLIT("Stajyer arıyoruz: Excel ve İNGİLİZCE bilen, makine öğrenmesi meraklısı."), &a);
    assert_string_equal(a.seniority, "junior");
    assert_true(ats_list_has(&a.skills, "Excel"));
    assert_true(ats_list_has(&a.skills, "English"));
    assert_true(ats_list_has(&a.skills, "Machine Learning"));
    ats_analysis_free(&a);
    ats_analyze(STRLIT("3 yıl deneyim"), &a);
    assert_string_equal(a.seniority, "mid");
    ats_analysis_free(&a);
    ats_analyze(STRLIT(""), &a);
    assert_int_equal(a.skills.n, 0);
    assert_string_equal(a.seniority, "unspecified");
    ats_analysis_free(&a);
}

static void test_ats_score(void **state)
{
    (void)state;
    const str_t job = STRLIT("Python developer with PostgreSQL and Docker; payments platform");
    struct ats_result s1, s2;
    ats_score(STRLIT("I build payments software in Python with PostgreSQL."), job, &s1);
    ats_score(STRLIT("I build payments software in Python with PostgreSQL."), job, &s2);
    /* job terms: skills Docker, PostgreSQL, Python (2 each); keywords developer, payments, platform (1 each) */
    assert_int_equal(s1.matched_skills.n, 2);
    assert_string_equal(s1.missing_skills.v[0], "Docker");
    assert_true(ats_list_has(&s1.matched_keywords, "payments"));
    assert_int_equal(s1.score, 56); /* (4 + 1) / 9 = 55.6 → 56 */
    assert_int_equal(s1.score, s2.score); /* deterministic */
    ats_result_free(&s1);
    ats_result_free(&s2);
    /* Turkish casing: İ/I/ı/i all match */
    ats_score(STRLIT("İLERİ DÜZEY İNGİLİZCE, SQL"), STRLIT("ingilizce ve sql, ileri düzey"), &s1);
    assert_int_equal(s1.score, 100);
    ats_result_free(&s1);
    ats_score(STRLIT("anything"), STRLIT("the and of"), &s1);
    assert_int_equal(s1.score, 0);
    ats_result_free(&s1);
    ats_score(STRLIT(""), STRLIT("Kubernetes"), &s1);
    assert_int_equal(s1.score, 0);
    assert_string_equal(s1.missing_skills.v[0], "Kubernetes");
    ats_result_free(&s1);
}

static void test_transitions(void **state)
{
    (void)state;
    assert_true(career_transition_ok(STRLIT("saved"), STRLIT("applied")));
    assert_true(career_transition_ok(STRLIT("applied"), STRLIT("interview")));
    assert_true(career_transition_ok(STRLIT("interview"), STRLIT("offer")));
    assert_true(career_transition_ok(STRLIT("saved"), STRLIT("withdrawn")));
    assert_true(career_transition_ok(STRLIT("offer"), STRLIT("rejected")));
    assert_false(career_transition_ok(STRLIT("saved"), STRLIT("offer")));
    assert_false(career_transition_ok(STRLIT("applied"), STRLIT("saved")));
    assert_false(career_transition_ok(STRLIT("rejected"), STRLIT("applied")));
    assert_false(career_transition_ok(STRLIT("withdrawn"), STRLIT("rejected")));
    assert_false(career_transition_ok(STRLIT("applied"), STRLIT("applied")));
}

/* A profile is the document tokenised once: scoring profiles equals scoring texts. */
static void test_ats_profiles(void **state)
{
    (void)state;
    static const char *const resumes[] = {"I build payments software in Python with PostgreSQL.",
                                          "İLERİ DÜZEY İNGİLİZCE, SQL", "", "Kubernetes kubernetes k8s Go golang"};
    static const char *const jobs[] = {"Python developer with PostgreSQL and Docker; payments platform",
                                       "ingilizce ve sql, ileri düzey", "the and of", "Kubernetes, Go, Rust"};
    for (size_t i = 0; i < ARRAY_LEN(resumes); i++)
        for (size_t j = 0; j < ARRAY_LEN(jobs); j++) {
            struct buf rp = BUF_INIT(1 << 20), jp = BUF_INIT(1 << 20);
            struct ats_doc rd, jd;
            struct ats_result a, b;
            ats_profile(str_c(resumes[i]), ATS_RESUME, &rp);
            ats_profile(str_c(jobs[j]), ATS_JOB, &jp);
            assert_int_equal(ats_doc_load(buf_str(&rp), ATS_RESUME, &rd), 0);
            assert_int_equal(ats_doc_load(buf_str(&jp), ATS_JOB, &jd), 0);
            ats_match(&rd, &jd, &a);
            ats_score(str_c(resumes[i]), str_c(jobs[j]), &b);
            assert_int_equal(a.score, b.score);
            assert_int_equal(a.matched_keywords.n, b.matched_keywords.n);
            assert_int_equal(a.missing_skills.n, b.missing_skills.n);
            ats_result_free(&a);
            ats_result_free(&b);
            ats_doc_free(&rd);
            ats_doc_free(&jd);
            buf_free(&rp);
            buf_free(&jp);
        }
    /* a resume's profile keeps each distinct word once, sorted, no stop words */
    struct buf p = BUF_INIT(4096);
    ats_profile(STRLIT("Zebra apple zebra the Python"), ATS_RESUME, &p);
    assert_string_equal(buf_cstr(&p), ATS_PROFILE_MAGIC "s Python\nw apple\nw python\nw zebra\n");
    buf_reset(&p);
    ats_profile(STRLIT("Docker payments payments"), ATS_JOB, &p);
    assert_string_equal(buf_cstr(&p), ATS_PROFILE_MAGIC "s Docker\nk payments payments\n");
    buf_free(&p);
    /* stale or damaged profiles do not load (the caller rebuilds them from the text) */
    static const char *const bad[] = {"", "ats0\ns Python\n", "garbage", ATS_PROFILE_MAGIC "s NoSuchSkill\n",
                                      ATS_PROFILE_MAGIC "w word\n" /* a word line in a job */,
                                      ATS_PROFILE_MAGIC "k kw" /* no final newline */, ATS_PROFILE_MAGIC "x\n"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct ats_doc d;
        assert_int_equal(ats_doc_load(str_c(bad[i]), ATS_JOB, &d), -1);
        assert_null(d.mem);
    }
}

/* Issue 15 item 5: filler is no keyword, in English or Turkish. */
static void test_ats_stop_words(void **state)
{
    (void)state;
    struct ats_analysis a;
    ats_analyze(STRLIT("Every day you run, write and tune the payments ledger. Every day we run it. "
                       "You will write code every day and tune queries daily; ledger, ledger."),
                &a);
    static const char *const filler[] = {"every", "day", "run", "write", "tune", "daily", "you", "will", "code"};
    for (size_t i = 0; i < ARRAY_LEN(filler) - 1; i++)
        assert_false(ats_list_has(&a.keywords, filler[i]));
    assert_string_equal(a.keywords.v[0], "ledger");
    ats_analysis_free(&a);
    ats_analyze(STRLIT("Her gün ekibimize katılacak, en az 3 yıl deneyimli, muhasebe ve bordro süreçlerini "
                       "yürütecek arkadaş arıyoruz. Bordro bilgisi şart."),
                &a);
    static const char *const tr_filler[] = {"her", "gün", "ekibimize", "katılacak", "yıl", "deneyimli",
                                            "arıyoruz", "bilgisi", "şart", "ve"};
    for (size_t i = 0; i < ARRAY_LEN(tr_filler); i++)
        assert_false(ats_list_has(&a.keywords, tr_filler[i]));
    assert_string_equal(a.keywords.v[0], "bordro");
    assert_true(ats_list_has(&a.skills, "Accounting")); /* muhasebe */
    assert_int_equal(a.required.n, 0); /* "şart" is in the next sentence, which names no skill */
    ats_analysis_free(&a);
}

/* Turkish casing: I is ı and İ is i in Turkish text, I is i in English; all match each other. */
static void test_ats_turkish_casing(void **state)
{
    (void)state;
    assert_int_equal(ats_detect_lang(STRLIT("IŞIK ılık ığdır")), ATS_LANG_TR);
    assert_int_equal(ats_detect_lang(STRLIT("Integration engineer, ISTANBUL office")), ATS_LANG_EN);
    assert_int_equal(ats_detect_lang(STRLIT("An integration engineer for our office in İstanbul, working on "
                                            "integrations with banks and insurers across the whole region")),
                     ATS_LANG_EN);
    struct ats_analysis a;
    ats_analyze(STRLIT("IŞIK ve ILIK su; IŞIK tasarımı. İZMİR şubesi, İZMİR."), &a);
    assert_true(ats_list_has(&a.keywords, "ışık"));
    assert_true(ats_list_has(&a.keywords, "ılık"));
    assert_true(ats_list_has(&a.keywords, "izmir"));
    assert_false(ats_list_has(&a.keywords, "işik"));
    ats_analysis_free(&a);
    ats_analyze(STRLIT("INTEGRATION INTEGRATION tests"), &a);
    assert_string_equal(a.keywords.v[0], "integration");
    ats_analysis_free(&a);
    /* the dotted and dotless spellings still match each other */
    struct ats_result r;
    ats_score(STRLIT("ışık tasarımı, izmir"), STRLIT("IŞIK TASARIMI, İZMİR; ışık"), &r);
    assert_int_equal(r.score, 100);
    ats_result_free(&r);
    ats_score(STRLIT("isik"), STRLIT("IŞIK"), &r); /* ş is not s: no match */
    assert_int_equal(r.score, 0);
    ats_result_free(&r);
    /* a combining dot above (İ lower-cased elsewhere as "i̇") is dropped */
    ats_score(STRLIT("i\xcc\x87zmir"), STRLIT("izmir"), &r);
    assert_int_equal(r.score, 100);
    ats_result_free(&r);
}

/* Required skills weigh 3, plain 2, nice-to-have 1. */
static void test_ats_required_weight(void **state)
{
    (void)state;
    struct ats_analysis a;
    const str_t job = STRLIT("Requirements:\n- Python\n- Docker\n\nNice to have:\n- Rust\n\nWe use Redis.");
    ats_analyze(job, &a);
    assert_int_equal(a.required.n, 2);
    assert_string_equal(a.required.v[0], "Docker");
    assert_string_equal(a.required.v[1], "Python");
    assert_int_equal(a.preferred.n, 1);
    assert_string_equal(a.preferred.v[0], "Rust");
    assert_true(ats_list_has(&a.skills, "Redis") && !ats_list_has(&a.required, "Redis"));
    assert_int_equal(a.keywords.n, 0);
    ats_analysis_free(&a);
    struct ats_result r;
    ats_score(STRLIT("Python, Docker"), job, &r); /* (3+3) / (3+3+1+2) = 66.7 */
    assert_int_equal(r.score, 67);
    ats_result_free(&r);
    ats_score(STRLIT("Rust, Redis"), job, &r); /* (1+2) / 9 */
    assert_int_equal(r.score, 33);
    ats_result_free(&r);
    /* inside one sentence, in Turkish, the marker may come after the skill */
    ats_analyze(STRLIT("Python bilgisi şart. Rust tercih sebebidir."), &a);
    assert_true(ats_list_has(&a.required, "Python"));
    assert_true(ats_list_has(&a.preferred, "Rust"));
    ats_analysis_free(&a);
    ats_analyze(STRLIT("Aranan nitelikler:\nSQL ve Excel\nİngilizce\n\nPower BI"), &a);
    assert_true(ats_list_has(&a.required, "SQL") && ats_list_has(&a.required, "Excel"));
    assert_true(ats_list_has(&a.required, "English"));
    assert_false(ats_list_has(&a.required, "Power BI"));
    ats_analysis_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ats_normalize_turkish), cmocka_unit_test(test_ats_analyze),
        cmocka_unit_test(test_ats_score),             cmocka_unit_test(test_ats_profiles),
        cmocka_unit_test(test_transitions),           cmocka_unit_test(test_ats_stop_words),
        cmocka_unit_test(test_ats_turkish_casing),    cmocka_unit_test(test_ats_required_weight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
