// The event types profiled gives a meaning to. Events carry their type as a
// string (any snake_case name is accepted and counted); these are the ones
// that change profiles, signals or identity beyond being counted, named in
// one place so no file spells them on its own.
//
//   if (core::EventTypeOf(event.type()) == core::EventType::kAlias) ...
//   event.set_type(std::string(core::EventTypeName(core::EventType::kOrderCompleted)));
#pragma once

#include <string_view>

namespace profiled::core {

enum class EventType {
  kOther,            // any type not listed: counted, no special meaning
  kPageViewed,       // page_viewed
  kProductViewed,    // product_viewed
  kAddedToCart,      // added_to_cart
  kRemovedFromCart,  // removed_from_cart
  kCheckoutStarted,  // checkout_started
  kOrderCompleted,   // order_completed
  kAlias,            // alias: previous_id and the event's ids are one person
  kConsentUpdated,   // consent_updated: a consent decision from the control topic
};

inline constexpr EventType kNamedEventTypes[] = {
    EventType::kPageViewed,      EventType::kProductViewed,   EventType::kAddedToCart,
    EventType::kRemovedFromCart, EventType::kCheckoutStarted, EventType::kOrderCompleted,
    EventType::kAlias,           EventType::kConsentUpdated};

// The type's name on the wire ("" for kOther).
constexpr std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kOther: return "";
    case EventType::kPageViewed: return "page_viewed";
    case EventType::kProductViewed: return "product_viewed";
    case EventType::kAddedToCart: return "added_to_cart";
    case EventType::kRemovedFromCart: return "removed_from_cart";
    case EventType::kCheckoutStarted: return "checkout_started";
    case EventType::kOrderCompleted: return "order_completed";
    case EventType::kAlias: return "alias";
    case EventType::kConsentUpdated: return "consent_updated";
  }
  return "";
}

// kOther for any name not listed.
constexpr EventType EventTypeOf(std::string_view name) {
  for (EventType t : kNamedEventTypes) {
    if (EventTypeName(t) == name) return t;
  }
  return EventType::kOther;
}

}  // namespace profiled::core
