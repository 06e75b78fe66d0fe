"""examples/shop end to end in headless Chromium (Debian's chromium and
chromium-driver, never a downloaded browser): a person adds items, pays on the
checkout page with localstripe's Stripe.js stand-in, and the order page shows
"paid" once localstripe's signed webhook reached the shop; a declined card shows
the decline and a second card pays. Each final page is saved as a screenshot in
the test's temporary folder.

``CARTPAY_CHROMIUM`` and ``CARTPAY_CHROMEDRIVER`` name other binaries; without
them (or the defaults) the tests skip, which CI's required-suites guard fails.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import stripe
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cartpay import CartPaymentIntent
from cartpay.gateways.stripe import StripeGateway
from cartpay.stores.memory import MemoryStore
from cartpay.testing import LocalStripe
from cartpay.testing.plugin import TEST_WEBHOOK_SECRET

from .support import served

pytestmark = [pytest.mark.browser, pytest.mark.localstripe]

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "app.py"
CHROMIUM = os.environ.get("CARTPAY_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CARTPAY_CHROMEDRIVER", "/usr/bin/chromedriver")
#: The flags that keep Chromium headless, quiet and off the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,800",
)


def _shop_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shop_example", SHOP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module, with a fresh profile."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} not found: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit driver path: Selenium Manager (which would download one) is not run.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shop(
    stripe_gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    localstripe_server: LocalStripe,
    browser: webdriver.Chrome,
) -> Iterator[tuple[str, CartPaymentIntent]]:
    """The example shop served by uvicorn on a free port, localstripe's webhooks
    going to it; yields its URL and façade. The browser starts with no cookies."""
    payments = CartPaymentIntent(gateway=stripe_gateway, store=MemoryStore())
    app = _shop_module().create_app(
        payments,
        stripe_client,
        publishable_key="pk_test_cartpay",
        stripe_js_url=f"{localstripe_server.url}/js.stripe.com/v3/",
    )
    with served(app) as url:
        localstripe_server.register_webhook("shop", f"{url}/stripe/webhook", TEST_WEBHOOK_SECRET)
        browser.delete_all_cookies()
        try:
            yield url, payments
        finally:
            localstripe_server.register_webhook("shop", "http://127.0.0.1:9/", "whsec_none", [])


def _wait(browser: webdriver.Chrome, what: str, condition: object, timeout: float = 20) -> None:
    try:
        WebDriverWait(browser, timeout).until(condition)  # type: ignore[arg-type]
    except TimeoutException:
        raise AssertionError(
            f"{what}; the page says:\n{browser.find_element(By.TAG_NAME, 'body').text}"
        ) from None


def _fill_items(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    browser.find_element(By.ID, "add-tee").click()
    _wait(
        browser,
        "the cart counts the T-shirt",
        expected_conditions.text_to_be_present_in_element((By.ID, "count"), "1"),
    )
    browser.find_element(By.ID, "add-tee").click()
    _wait(
        browser,
        "the cart counts two",
        expected_conditions.text_to_be_present_in_element((By.ID, "count"), "2"),
    )
    browser.find_element(By.ID, "add-mug").click()
    _wait(
        browser,
        "the cart totals 62.00",
        expected_conditions.text_to_be_present_in_element((By.ID, "total"), "62.00"),
    )
    browser.find_element(By.ID, "checkout").click()
    _wait(
        browser,
        "the card element is mounted",
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "#card input[placeholder=number]")
        ),
    )
    assert browser.find_element(By.ID, "amount").text == "62.00"


def _pay(browser: webdriver.Chrome, number: str) -> None:
    """Type a test card into localstripe's card element and press Pay."""
    for field, value in (
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "34"),
        ("cvc", "123"),
        ("postal_code", "42424"),
    ):
        box = browser.find_element(By.CSS_SELECTOR, f"#card input[placeholder={field}]")
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "pay").click()


def _wait_paid(browser: webdriver.Chrome) -> None:
    _wait(
        browser,
        "the order page opens",
        expected_conditions.presence_of_element_located((By.ID, "payment")),
    )
    _wait(
        browser,
        "the order page shows localstripe's webhook",
        expected_conditions.text_to_be_present_in_element(
            (By.ID, "webhook"), "payment_intent.succeeded received"
        ),
    )
    assert browser.find_element(By.ID, "payment").text == "paid"


def _order_id(browser: webdriver.Chrome) -> str:
    return browser.current_url.rsplit("/", 1)[1]


def test_a_customer_pays_and_the_order_page_shows_paid(
    shop: tuple[str, CartPaymentIntent], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    url, payments = shop
    _fill_items(browser, url)
    _pay(browser, "4242424242424242")
    _wait_paid(browser)
    browser.save_screenshot(str(tmp_path / "paid.png"))
    order = payments.get_order(_order_id(browser))
    assert (order.status, order.payment, order.total, order.captured) == (
        "complete",
        "paid",
        6200,
        6200,
    )
    assert [(i.sku, i.quantity) for i in order.items] == [("tee", 2), ("mug", 1)]


def test_a_declined_card_shows_the_decline_and_a_second_card_pays(
    shop: tuple[str, CartPaymentIntent], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    url, payments = shop
    _fill_items(browser, url)
    _pay(browser, "4000000000000002")
    _wait(
        browser,
        "the decline is shown",
        expected_conditions.text_to_be_present_in_element((By.ID, "message"), "declined"),
    )
    browser.save_screenshot(str(tmp_path / "declined.png"))
    assert "/checkout" in browser.current_url
    _pay(browser, "4242424242424242")
    _wait_paid(browser)
    browser.save_screenshot(str(tmp_path / "paid-after-decline.png"))
    order = payments.get_order(_order_id(browser))
    assert (order.payment, order.captured) == ("paid", 6200)
    assert (tmp_path / "declined.png").stat().st_size > 0
