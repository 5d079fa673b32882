/* templates.c — the mails identity sends (mail.h registry; {{var}} is
 * HTML-escaped in the HTML part). */
#include "transport/mail.h"
#include "modules/users/users_internal.h"

#include "core/banned.h"

void users__register_templates(void)
{
    mail_template_register("verify_email", "Confirm your email address",
                           "Welcome to temel.\n\nConfirm your email address with this code:\n\n{{token}}\n\n"
                           "It is valid for 48 hours. If you did not sign up, ignore this message.\n",
                           "<p>Welcome to temel.</p><p>Confirm your email address with this code:</p>"
                           "<p><code>{{token}}</code></p><p>It is valid for 48 hours. If you did not sign up, ignore "
                           "this message.</p>");
    mail_template_register("reset_password", "Reset your password",
                           "Someone asked to reset the password of your temel account.\n\nReset code:\n\n{{token}}\n\n"
                           "It is valid for 30 minutes and works once. If it was not you, ignore this message.\n",
                           "<p>Someone asked to reset the password of your temel account.</p><p>Reset code:</p>"
                           "<p><code>{{token}}</code></p><p>It is valid for 30 minutes and works once. If it was not "
                           "you, ignore this message.</p>");
    mail_template_register("account_exists", "Someone tried to sign up with your address",
                           "Someone tried to create a temel account with this email address, which already has "
                           "one.\n\nIf it was you, sign in, or use \"forgot password\" if you do not remember "
                           "it. If it was not you, ignore this message: nothing was changed.\n",
                           "<p>Someone tried to create a temel account with this email address, which already has "
                           "one.</p><p>If it was you, sign in, or use &quot;forgot password&quot; if you do not "
                           "remember it. If it was not you, ignore this message: nothing was changed.</p>");
    mail_template_register("otp", "Your sign-in code",
                           "Your temel sign-in code is {{code}}.\n\nIt expires in 5 minutes.\n",
                           "<p>Your temel sign-in code is <b>{{code}}</b>.</p><p>It expires in 5 minutes.</p>");
}
