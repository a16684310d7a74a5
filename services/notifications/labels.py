"""Words for the codes that events carry (reasons, conditions, label types), per template locale.

An unknown code (a closure code added later, say) is shown as the code itself rather than failing.
"""

from __future__ import annotations

LABELS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "reason": {
            "NO_LONGER_NEEDED": "No longer needed",
            "ORDERED_BY_MISTAKE": "Ordered by mistake",
            "BETTER_PRICE_FOUND": "Better price found elsewhere",
            "DONT_KNOW_HOW_TO_USE": "Didn't know how to use it",
            "DAMAGED_ON_ARRIVAL": "Damaged on arrival",
            "DEFECTIVE": "Defective",
            "WRONG_ITEM_SENT": "Wrong item sent",
            "WRONG_SIZE_OR_COLOR_SENT": "Wrong size or colour sent",
            "MISSING_PARTS": "Missing parts",
            "NOT_AS_DESCRIBED": "Not as described",
            "ARRIVED_LATE": "Arrived late",
        },
        "condition": {
            "sellable": "as new",
            "opened": "opened",
            "used": "used",
            "damaged_by_buyer": "damaged after delivery",
            "damaged_in_transit": "damaged in transit",
            "wrong_item": "not the item sold",
            "missing": "missing",
        },
        "label_type": {
            "prepaid": "Prepaid return label (postage already paid)",
            "unpaid": "Unpaid return label (you pay the postage when you ship)",
        },
        "paid_by": {"buyer": "you", "seller": "the seller"},
        "paid_by_seller_view": {"buyer": "the buyer", "seller": "you"},
        "breakdown": {
            "restocking_fee": "Restocking fee",
            "outbound_shipping": "Original shipping",
            "return_shipping_concession": "Return postage refund",
            "other_concession": "Goodwill credit from the seller",
        },
    },
    "zh-CN": {
        "reason": {
            "NO_LONGER_NEEDED": "不再需要",
            "ORDERED_BY_MISTAKE": "误购",
            "BETTER_PRICE_FOUND": "找到更低价格",
            "DONT_KNOW_HOW_TO_USE": "不会使用",
            "DAMAGED_ON_ARRIVAL": "到货时已损坏",
            "DEFECTIVE": "商品有缺陷",
            "WRONG_ITEM_SENT": "发错商品",
            "WRONG_SIZE_OR_COLOR_SENT": "发错尺码或颜色",
            "MISSING_PARTS": "缺少配件",
            "NOT_AS_DESCRIBED": "与描述不符",
            "ARRIVED_LATE": "送达过晚",
        },
        "condition": {
            "sellable": "完好可售",
            "opened": "已拆封",
            "used": "已使用",
            "damaged_by_buyer": "签收后损坏",
            "damaged_in_transit": "运输中损坏",
            "wrong_item": "非所售商品",
            "missing": "缺失",
        },
        "label_type": {
            "prepaid": "预付费退货面单（运费已付）",
            "unpaid": "未付费退货面单（寄件时由您支付运费）",
        },
        "paid_by": {"buyer": "您", "seller": "卖家"},
        "paid_by_seller_view": {"buyer": "买家", "seller": "您"},
        "breakdown": {
            "restocking_fee": "重新入库费",
            "outbound_shipping": "原订单运费",
            "return_shipping_concession": "退货运费补偿",
            "other_concession": "卖家额外补偿",
        },
    },
}


def label(locale: str, kind: str, code: str | None) -> str:
    if code is None:
        return ""
    words = LABELS.get(locale, LABELS["en"]).get(kind, {})
    return words.get(str(code), str(code))
