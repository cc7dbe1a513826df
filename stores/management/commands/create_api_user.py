"""Create or update an API user with a role and locations, and print a new API token.

    manage.py create_api_user --username shop --role storefront
    manage.py create_api_user --username hanako --role associate --location TKY-SHIBUYA --location TKY-GINZA
    manage.py create_api_user --username boss --role manager --network
    manage.py create_api_user --username locker-sby --role locker --location TKY-SHIBUYA

--location replaces the user's assignments; without it an existing user keeps them. A manager
needs --location (acts at those locations) or --network (acts at every location).
Staff roles (associate, warehouse, manager) get is_staff and their role's admin group;
set a password for the admin with `manage.py changepassword NAME`. A locker controller (role
locker, a device) is API-only and opens the lockers of its --location stores, nothing else.
"""

from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from stores.models import Role
from stores.selectors import user_location_ids
from stores.services import api_token_create, api_user_upsert


class Command(BaseCommand):
    help = "Create or update an API user (role + locations) and print a new API token."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(Role.values)}")
        parser.add_argument(
            "--location",
            action="append",
            dest="locations",
            metavar="CODE",
            help="location code (repeat for several); replaces the user's assignments",
        )
        parser.add_argument(
            "--network",
            action="store_true",
            help="managers only: act at every location of the network (instead of --location)",
        )
        parser.add_argument("--email", default="")
        parser.add_argument("--no-token", action="store_true", help="do not create a token")
        parser.add_argument(
            "--token-only", action="store_true", help="print only the token (for scripts: TOKEN=$(...))"
        )

    def handle(self, *args, username, role, locations, network, email, no_token, token_only, **options):
        try:
            user, created = api_user_upsert(
                username=username.strip() if username else username,
                role=role,
                location_codes=locations,
                email=email,
                network_wide=network,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if token_only:
            self.stdout.write(api_token_create(user))
            return
        codes = sorted(user.assignments.values_list("location__code", flat=True))
        if user_location_ids(user) is None:
            where = "every location (network-wide)"
        elif role == Role.STOREFRONT:
            where = "(none: acts for the customers it serves)"
        else:
            where = ", ".join(codes)
        self.stdout.write(
            f"{'Created' if created else 'Updated'} user {user.username!r}: role {role}, "
            f"locations {where}, admin login {'yes' if user.is_staff else 'no'}."
        )
        if not no_token:
            token = api_token_create(user)
            self.stdout.write(f"API token (shown once): {token}")
            self.stdout.write(f"Use it as the header   Authorization: Token {token}")
