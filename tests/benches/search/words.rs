//! The word lists the synthetic photos are written from: English caption
//! words (function words first, then roughly by how often captions use
//! them), real Chinese words (each one word for jieba), hashtags, cameras,
//! names and city centres.

/// English caption words, most frequent first (the order is the Zipf rank).
pub const ENGLISH: &str = "
the a of and in on at with to from my this is was for by over our its an
into near through all some just one two like so very still again out up
after before under first last new old little big long morning evening
light sunset sunrise sky city street night day water sea beach mountain
lake river forest tree trees clouds cloud sun snow rain fog mist winter
summer spring autumn fall blue green red golden black white dark bright
view walk road bridge park garden flower flowers house home building
window door wall church tower castle village town harbour boat boats
ship train station market cafe coffee food dinner lunch breakfast friends
family dog cat bird birds horse cow sheep portrait people child children
girl boy woman man hands eyes face smile shadow shadows reflection
reflections colour colours color colors hour time weekend holiday trip
travel journey way path trail hill hills valley field fields meadow grass
leaves leaf wind storm thunder lightning moon stars star milky galaxy
dawn dusk twilight midnight noon afternoon today yesterday tomorrow
ocean waves wave shore coast cliff cliffs rocks rock stone sand desert
dunes island islands bay lighthouse pier dock port sail sailing surf
surfing swim swimming kayak canoe fishing fish waterfall stream creek
pond lagoon glacier ice frozen frost cold warm hot sunny cloudy misty
foggy rainy snowy windy calm quiet peaceful busy crowded empty lonely
alone together happy beautiful lovely pretty amazing stunning gorgeous
wonderful perfect favourite favorite best great good nice small tiny huge
tall high low deep wide narrow open closed soft sharp blurry vintage
classic modern ancient historic abandoned ruins ruin temple shrine mosque
cathedral chapel monastery palace fort fortress wall gate square plaza
fountain statue monument museum gallery art mural graffiti sign neon
lights lamp lantern candle fire campfire smoke steam dust rust metal glass
wood wooden brick concrete steel iron paper book books music guitar piano
concert festival parade party wedding birthday celebration fireworks
christmas halloween easter carnival crowd dancer dancers dance game match
football soccer tennis basketball cycling bike bicycle car cars bus tram
taxi truck motorcycle plane airport flight wing road highway tunnel
alley lane avenue corner crossing traffic rooftop roof balcony terrace
stairs staircase steps hallway room kitchen table chair bed sofa cup tea
wine beer cocktail bar restaurant bakery bread cake pizza pasta sushi
noodles rice soup salad fruit apple apples orange lemon cherry cherries
strawberry berries grapes vineyard farm barn tractor harvest wheat corn
sunflower sunflowers tulip tulips rose roses daisy lily lotus orchid
blossom blossoms bloom petals moss fern ivy vine cactus palm palms pine
pines oak maple birch willow bamboo jungle woods woodland grove orchard
mushroom mushrooms insect butterfly bee bees dragonfly spider web snail
frog lizard snake turtle duck ducks swan swans goose geese gull gulls
pigeon pigeons owl eagle hawk heron crow sparrow robin parrot flamingo
penguin seal whale dolphin deer fox wolf bear rabbit squirrel mouse
lion tiger elephant giraffe zebra monkey camel goat pig chicken puppy
kitten pet pets baby mother father sister brother grandmother grandfather
couple bride groom friend stranger traveller tourist tourists local
worker fisherman farmer vendor musician artist painter photographer
model runner climber hiker skier surfer swimmer cyclist driver
sleeping walking running waiting sitting standing looking watching
reading playing working dancing singing laughing crying talking smiling
climbing hiking skiing camping exploring wandering flying floating
falling rising shining glowing burning melting blooming growing
hidden secret forgotten lost found quiet golden silver purple pink
yellow brown grey gray orange turquoise emerald crimson pastel monochrome
minimal minimalism abstract pattern patterns texture textures lines shapes
symmetry geometry curves circle circles square triangle spiral frame
framed composition perspective angle close macro detail details wide
panorama panoramic aerial drone underwater longexposure exposure bokeh
focus blur motion silhouette silhouettes contrast highlights tones mood
moody atmosphere atmospheric dramatic cinematic dreamy magical mystical
surreal serene tranquil vibrant colorful colourful faded grainy film
analog polaroid mirror lens camera shot photo photos picture image
snapshot series project study experiment edit version test sample
north south east west northern southern eastern western central upper
lower inner outer coastal rural urban suburban industrial remote wild
national state public private royal grand great saint holy sacred
spirit ghost dream dreams memory memories story stories life love hope
peace freedom journey adventure escape silence solitude wonder beauty
nature earth world planet universe space sunbeam sunlight moonlight
starlight daylight firelight backlight glow shine sparkle rainbow
horizon skyline cityscape landscape seascape streetscape waterfront
riverside lakeside seaside countryside mountainside hillside roadside
downtown uptown chinatown oldtown neighbourhood neighborhood district
suburb outskirts center centre middle edge end beginning top bottom side
inside outside behind beyond between among along across around above
below against toward towards without within during until since while
almost only even also never always sometimes often every each another
other same different many much more most less few several enough whole
half full empty double single third second final next previous early
late fast slow quick gentle rough smooth wet dry fresh sweet bitter
salty spicy delicious tasty homemade local seasonal traditional cultural
tribal festive elegant simple rustic cozy cosy charming quaint majestic
towering endless vast distant nearby hidden sunlit shaded shady moonlit
starry snowcapped rocky sandy grassy leafy muddy dusty icy stormy hazy
overcast clear crisp humid tropical arctic alpine mediterranean nordic
asian african european american pacific atlantic indian oriental
spring summer mountains peaks peak summit ridge slope slopes canyon
gorge cave caves volcano crater geyser hotspring lava basalt granite
marble limestone sandstone cliffside shoreline tide tides reef coral
shell shells pebbles driftwood seaweed kelp foam spray splash ripple
ripples puddle puddles raindrops droplets dew icicles snowflake
snowflakes avalanche blizzard drizzle shower showers breeze gust
hurricane tornado sundown sunup daybreak nightfall evening
weekday monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october
november december year years month months week weeks hours minutes
moment moments second seconds instant forever someday somewhere
everywhere nowhere anywhere here there home abroad overseas downtown
architecture design interior exterior facade arch arches column columns
dome domes spire spires window windows shutters balconies courtyard
cloister arcade colonnade pavilion pagoda bungalow cottage cabin hut
tent camp campsite hostel hotel inn resort villa mansion apartment
skyscraper factory warehouse mill windmill watermill lighthouse
viaduct aqueduct dam canal lock locks wharf quay jetty
marina shipyard dockyard boardwalk promenade esplanade pier seawall
breakwater mole embankment levee dyke dike causeway ferry ferryboat
sailboat yacht gondola rowboat raft barge tugboat steamer trawler
cruise liner submarine helicopter balloon hotairballoon kite glider
parachute rocket satellite telescope observatory planetarium
library bookstore bookshop record vinyl cassette radio television
cinema theatre theater stage curtain spotlight microphone drum drums
violin cello trumpet saxophone flute harp accordion choir orchestra
opera ballet tango salsa waltz jazz blues rock punk hiphop techno
rave club disco karaoke arcade casino circus clown juggler acrobat
magician puppet mask masks costume costumes dress hat hats scarf
gloves boots shoes umbrella umbrellas backpack suitcase luggage map
maps compass ticket tickets passport postcard postcards letter letters
stamp stamps coin coins clock clocks watch bell bells key keys lock
chain rope net nets basket baskets bucket barrel bottle bottles jar
jars vase vases bowl bowls plate plates spoon fork knife chopsticks
teapot kettle pot pan oven stove fireplace chimney candlelight
lamplight streetlight streetlights traffic signal signpost billboard
poster posters flag flags banner banners ribbon ribbons balloon
balloons confetti sparkler sparklers bonfire torch torches lanterns
";

/// Chinese words (each one that jieba keeps whole), most frequent first.
pub const CHINESE: &str = "
阳光 城市 风景 天空 夕阳 日出 森林 浓雾 大海 海边 山峰 湖泊 河流 雪山
街道 夜景 灯光 建筑 公园 花园 花朵 樱花 荷花 秋天 春天 夏天 冬天 落叶
晚霞 云海 彩虹 星空 月亮 银河 沙滩 海浪 岛屿 港口 渔船 灯塔 寺庙 古镇
老街 小巷 胡同 桥梁 古桥 石桥 长城 故宫 宫殿 园林 竹林 松树 柳树 枫叶
草原 沙漠 峡谷 瀑布 溪流 湿地 田野 稻田 梯田 油菜花 向日葵 薰衣草 玫瑰
牡丹 菊花 梅花 桃花 茶园 咖啡 美食 早餐 午餐 晚餐 火锅 面条 饺子 包子
小吃 夜市 市场 商店 餐厅 书店 咖啡馆 图书馆 博物馆 美术馆 地铁 火车
高铁 飞机 机场 车站 汽车 自行车 摩托车 公交车 出租车 马路 高速公路 隧道
天桥 广场 雕塑 喷泉 路灯 霓虹灯 灯笼 烟花 春节 中秋 元宵 端午 国庆
婚礼 生日 聚会 朋友 家人 孩子 母亲 父亲 奶奶 爷爷 宝宝 小狗 小猫 鸟儿
蝴蝶 蜜蜂 鸽子 天鹅 鸭子 熊猫 老虎 大象 猴子 骏马 牛羊 渔民 农民 旅行
旅游 徒步 登山 露营 骑行 游泳 滑雪 冲浪 钓鱼 散步 跑步 摄影 照片 相机
镜头 黑白 色彩 光影 倒影 影子 剪影 构图 细节 纹理 线条 几何 极简 抽象
复古 胶片 人像 街拍 风光 航拍 微距 长曝光 延时 夜晚 清晨 黄昏 傍晚 午后
周末 假期 记忆 回忆 故事 梦想 自由 孤独 安静 宁静 温暖 寒冷 美丽 漂亮
壮观 神秘 浪漫 古老 现代 传统 文化 历史 艺术 音乐 舞蹈 节日 庙会 集市
乡村 农村 小镇 县城 郊区 山村 渔村 江南 西湖 黄山 泰山 华山 峨眉山 九寨沟
张家界 桂林 漓江 丽江 大理 洱海 拉萨 布达拉宫 西藏 新疆 青海湖 敦煌 莫高窟
长江 黄河 三峡 上海 北京 广州 深圳 杭州 苏州 南京 成都 重庆 西安 武汉
厦门 青岛 香港 澳门 台北 外滩 东方明珠 颐和园 天坛 鼓浪屿 乌镇 周庄 凤凰
雨水 雪花 冰雪 冰川 云朵 雾气 微风 暴雨 雷电 闪电 晴天 阴天 细雨 星星
";

/// Chinese function words used between caption words (the query side drops
/// them as the index's query builder does).
pub const CHINESE_GLUE: &[&str] = &["的", "和", "与", "在", "里", "中", "是", "很"];

/// Popular hashtags, most used first (the head of the tag distribution).
pub const TAG_HEAD: &str = "
photography nature travel landscape sunset photooftheday instagood
streetphotography art beautiful love picoftheday sky naturephotography
travelphotography portrait photo mountains sea beach city architecture
flowers bnw blackandwhite canon nikon sony fujifilm light summer winter
autumn spring clouds sunrise night urban food dog cat wildlife macro
film analog 35mm mobilephotography iphone explore adventure hiking
ocean lake river forest snow rain fog mist goldenhour bluehour
cityscape skyline streetart graffiti minimal minimalism abstract
travelgram wanderlust vacation holiday roadtrip europe asia japan
china paris london newyork tokyo italy france spain germany usa
风景 旅行 摄影 城市 美食 日落 夜景 人像 街拍 自然
";

/// Cameras, most used first.
pub const CAMERAS: &[&str] = &[
    "iPhone 15 Pro",
    "iPhone 14",
    "iPhone 13",
    "Pixel 8 Pro",
    "Samsung Galaxy S23 Ultra",
    "Canon EOS R5",
    "Sony ILCE-7M4",
    "Nikon Z 6_2",
    "FUJIFILM X-T5",
    "Canon EOS 5D Mark IV",
    "Sony ILCE-7RM5",
    "Nikon D750",
    "FUJIFILM X100V",
    "Xiaomi 13 Ultra",
    "HUAWEI P60 Pro",
    "Canon EOS R6",
    "Sony ILCE-6400",
    "Nikon Z 8",
    "FUJIFILM X-T3",
    "Canon EOS 80D",
    "OLYMPUS E-M1MarkIII",
    "Panasonic DC-GH6",
    "Leica Q2",
    "Leica M11",
    "RICOH GR III",
    "DJI Mavic 3",
    "DJI Mini 4 Pro",
    "GoPro HERO12 Black",
    "Canon EOS 6D",
    "Nikon D850",
    "Sony ILCE-7M3",
    "FUJIFILM X-S10",
    "Canon EOS M50",
    "Nikon Z fc",
    "Sony ZV-E10",
    "Pentax K-1 Mark II",
    "Hasselblad X2D 100C",
    "OnePlus 11",
    "OPPO Find X6 Pro",
    "vivo X90 Pro+",
    "Canon PowerShot G7 X Mark III",
    "Sony DSC-RX100M7",
    "Nikon COOLPIX P1000",
    "FUJIFILM GFX100S",
    "Panasonic DC-S5",
    "OM SYSTEM OM-1",
    "Sigma fp",
    "Canon EOS 7D Mark II",
    "Nikon D3500",
    "Pixel 7a",
];

/// Given names and family names for display names.
pub const GIVEN: &str = "
Ada Alan Alice Amir Ana Anna Ben Carla Chen Chloe Daniel David Elena Emma
Eva Felix Hana Hiro Ines Ivan James Jin Julia Kai Karim Lea Lena Leo Li
Lina Lucas Maria Marta Max Mei Mia Nadia Noah Nora Oliver Omar Paul Pedro
Ravi Rosa Sam Sara Sofia Tom Wei Yuki Zoe Ming Lan Jun Hao Xin Yan
";
pub const FAMILY: &str = "
Smith Garcia Muller Rossi Dubois Silva Wang Li Zhang Liu Chen Yang Huang
Zhao Wu Zhou Sato Suzuki Tanaka Kim Park Lee Nguyen Tran Kumar Singh
Patel Khan Ali Hansen Jensen Nielsen Berg Novak Kowalski Ivanov Petrov
Costa Santos Ferreira Lopez Martin Bernard Moreau Weber Schmidt Fischer
Meyer Wagner Becker Jones Brown Taylor Wilson Evans Thomas Roberts Walker
";

/// City centres `(name, lat, lon)`, roughly by how many photos are taken
/// there (the order is the Zipf rank).
pub const CITIES: &[(&str, f64, f64)] = &[
    ("Tokyo", 35.6762, 139.6503),
    ("New York", 40.7128, -74.0060),
    ("Paris", 48.8566, 2.3522),
    ("London", 51.5074, -0.1278),
    ("Shanghai", 31.2304, 121.4737),
    ("Beijing", 39.9042, 116.4074),
    ("Hong Kong", 22.3193, 114.1694),
    ("Seoul", 37.5665, 126.9780),
    ("Los Angeles", 34.0522, -118.2437),
    ("Singapore", 1.3521, 103.8198),
    ("Barcelona", 41.3874, 2.1686),
    ("Rome", 41.9028, 12.4964),
    ("Istanbul", 41.0082, 28.9784),
    ("Bangkok", 13.7563, 100.5018),
    ("San Francisco", 37.7749, -122.4194),
    ("Berlin", 52.5200, 13.4050),
    ("Amsterdam", 52.3676, 4.9041),
    ("Sydney", -33.8688, 151.2093),
    ("Dubai", 25.2048, 55.2708),
    ("Kyoto", 35.0116, 135.7681),
    ("Taipei", 25.0330, 121.5654),
    ("Chengdu", 30.5728, 104.0668),
    ("Hangzhou", 30.2741, 120.1551),
    ("Guangzhou", 23.1291, 113.2644),
    ("Shenzhen", 22.5431, 114.0579),
    ("Chicago", 41.8781, -87.6298),
    ("Madrid", 40.4168, -3.7038),
    ("Lisbon", 38.7223, -9.1393),
    ("Prague", 50.0755, 14.4378),
    ("Vienna", 48.2082, 16.3738),
    ("Osaka", 34.6937, 135.5023),
    ("Mexico City", 19.4326, -99.1332),
    ("Rio de Janeiro", -22.9068, -43.1729),
    ("Buenos Aires", -34.6037, -58.3816),
    ("Toronto", 43.6532, -79.3832),
    ("Vancouver", 49.2827, -123.1207),
    ("Melbourne", -37.8136, 144.9631),
    ("Moscow", 55.7558, 37.6173),
    ("Saint Petersburg", 59.9343, 30.3351),
    ("Cairo", 30.0444, 31.2357),
    ("Mumbai", 19.0760, 72.8777),
    ("Delhi", 28.7041, 77.1025),
    ("Jakarta", -6.2088, 106.8456),
    ("Kuala Lumpur", 3.1390, 101.6869),
    ("Manila", 14.5995, 120.9842),
    ("Hanoi", 21.0278, 105.8342),
    ("Ho Chi Minh City", 10.8231, 106.6297),
    ("Xi'an", 34.3416, 108.9398),
    ("Chongqing", 29.4316, 106.9123),
    ("Wuhan", 30.5928, 114.3055),
    ("Nanjing", 32.0603, 118.7969),
    ("Suzhou", 31.2989, 120.5853),
    ("Xiamen", 24.4798, 118.0894),
    ("Qingdao", 36.0671, 120.3826),
    ("Guilin", 25.2736, 110.2900),
    ("Lijiang", 26.8721, 100.2299),
    ("Dali", 25.6065, 100.2676),
    ("Lhasa", 29.6520, 91.1721),
    ("Kunming", 25.0389, 102.7183),
    ("Harbin", 45.8038, 126.5350),
    ("Florence", 43.7696, 11.2558),
    ("Venice", 45.4408, 12.3155),
    ("Milan", 45.4642, 9.1900),
    ("Naples", 40.8518, 14.2681),
    ("Munich", 48.1351, 11.5820),
    ("Hamburg", 53.5511, 9.9937),
    ("Zurich", 47.3769, 8.5417),
    ("Geneva", 46.2044, 6.1432),
    ("Brussels", 50.8503, 4.3517),
    ("Copenhagen", 55.6761, 12.5683),
    ("Stockholm", 59.3293, 18.0686),
    ("Oslo", 59.9139, 10.7522),
    ("Helsinki", 60.1699, 24.9384),
    ("Reykjavik", 64.1466, -21.9426),
    ("Dublin", 53.3498, -6.2603),
    ("Edinburgh", 55.9533, -3.1883),
    ("Manchester", 53.4808, -2.2426),
    ("Budapest", 47.4979, 19.0402),
    ("Warsaw", 52.2297, 21.0122),
    ("Krakow", 50.0647, 19.9450),
    ("Athens", 37.9838, 23.7275),
    ("Santorini", 36.3932, 25.4615),
    ("Dubrovnik", 42.6507, 18.0944),
    ("Porto", 41.1579, -8.6291),
    ("Seville", 37.3891, -5.9845),
    ("Marseille", 43.2965, 5.3698),
    ("Nice", 43.7102, 7.2620),
    ("Lyon", 45.7640, 4.8357),
    ("Marrakesh", 31.6295, -7.9811),
    ("Cape Town", -33.9249, 18.4241),
    ("Nairobi", -1.2921, 36.8219),
    ("Lagos", 6.5244, 3.3792),
    ("Tel Aviv", 32.0853, 34.7818),
    ("Jerusalem", 31.7683, 35.2137),
    ("Doha", 25.2854, 51.5310),
    ("Abu Dhabi", 24.4539, 54.3773),
    ("Tehran", 35.6892, 51.3890),
    ("Karachi", 24.8607, 67.0011),
    ("Lahore", 31.5204, 74.3587),
    ("Kathmandu", 27.7172, 85.3240),
    ("Colombo", 6.9271, 79.8612),
    ("Dhaka", 23.8103, 90.4125),
    ("Bangalore", 12.9716, 77.5946),
    ("Chennai", 13.0827, 80.2707),
    ("Kolkata", 22.5726, 88.3639),
    ("Jaipur", 26.9124, 75.7873),
    ("Agra", 27.1767, 78.0081),
    ("Goa", 15.2993, 74.1240),
    ("Chiang Mai", 18.7883, 98.9853),
    ("Phuket", 7.8804, 98.3923),
    ("Bali", -8.3405, 115.0920),
    ("Yogyakarta", -7.7956, 110.3695),
    ("Siem Reap", 13.3671, 103.8448),
    ("Yangon", 16.8409, 96.1735),
    ("Busan", 35.1796, 129.0756),
    ("Sapporo", 43.0618, 141.3545),
    ("Fukuoka", 33.5904, 130.4017),
    ("Nara", 34.6851, 135.8048),
    ("Hiroshima", 34.3853, 132.4553),
    ("Okinawa", 26.2124, 127.6809),
    ("Auckland", -36.8485, 174.7633),
    ("Queenstown", -45.0312, 168.6626),
    ("Wellington", -41.2865, 174.7762),
    ("Brisbane", -27.4698, 153.0251),
    ("Perth", -31.9505, 115.8605),
    ("Adelaide", -34.9285, 138.6007),
    ("Hobart", -42.8821, 147.3272),
    ("Honolulu", 21.3069, -157.8583),
    ("Anchorage", 61.2181, -149.9003),
    ("Seattle", 47.6062, -122.3321),
    ("Portland", 45.5152, -122.6784),
    ("San Diego", 32.7157, -117.1611),
    ("Las Vegas", 36.1699, -115.1398),
    ("Phoenix", 33.4484, -112.0740),
    ("Denver", 39.7392, -104.9903),
    ("Austin", 30.2672, -97.7431),
    ("Houston", 29.7604, -95.3698),
    ("Dallas", 32.7767, -96.7970),
    ("New Orleans", 29.9511, -90.0715),
    ("Miami", 25.7617, -80.1918),
    ("Atlanta", 33.7490, -84.3880),
    ("Washington", 38.9072, -77.0369),
    ("Boston", 42.3601, -71.0589),
    ("Philadelphia", 39.9526, -75.1652),
    ("Montreal", 45.5017, -73.5673),
    ("Quebec", 46.8139, -71.2080),
    ("Calgary", 51.0447, -114.0719),
    ("Banff", 51.1784, -115.5708),
    ("Havana", 23.1136, -82.3666),
    ("Cancun", 21.1619, -86.8515),
    ("Bogota", 4.7110, -74.0721),
    ("Medellin", 6.2442, -75.5812),
    ("Cartagena", 10.3910, -75.4794),
    ("Lima", -12.0464, -77.0428),
    ("Cusco", -13.5319, -71.9675),
    ("Quito", -0.1807, -78.4678),
    ("Santiago", -33.4489, -70.6693),
    ("Valparaiso", -33.0472, -71.6127),
    ("Montevideo", -34.9011, -56.1645),
    ("Sao Paulo", -23.5505, -46.6333),
    ("Salvador", -12.9777, -38.5016),
    ("La Paz", -16.4897, -68.1193),
    ("Ushuaia", -54.8019, -68.3030),
    ("Accra", 5.6037, -0.1870),
    ("Dakar", 14.7167, -17.4677),
    ("Addis Ababa", 8.9806, 38.7578),
    ("Zanzibar", -6.1659, 39.2026),
    ("Johannesburg", -26.2041, 28.0473),
    ("Windhoek", -22.5609, 17.0658),
    ("Casablanca", 33.5731, -7.5898),
    ("Fes", 34.0181, -5.0078),
    ("Tunis", 36.8065, 10.1815),
    ("Petra", 30.3285, 35.4444),
    ("Amman", 31.9454, 35.9284),
    ("Beirut", 33.8938, 35.5018),
    ("Tbilisi", 41.7151, 44.8271),
    ("Yerevan", 40.1792, 44.4991),
    ("Baku", 40.4093, 49.8671),
    ("Almaty", 43.2220, 76.8512),
    ("Tashkent", 41.2995, 69.2401),
    ("Samarkand", 39.6270, 66.9750),
    ("Ulaanbaatar", 47.8864, 106.9057),
    ("Vladivostok", 43.1198, 131.8869),
    ("Kazan", 55.8304, 49.0661),
    ("Kyiv", 50.4501, 30.5234),
    ("Lviv", 49.8397, 24.0297),
    ("Bucharest", 44.4268, 26.1025),
    ("Sofia", 42.6977, 23.3219),
    ("Belgrade", 44.7866, 20.4489),
    ("Zagreb", 45.8150, 15.9819),
    ("Ljubljana", 46.0569, 14.5058),
    ("Bratislava", 48.1486, 17.1077),
    ("Salzburg", 47.8095, 13.0550),
    ("Innsbruck", 47.2692, 11.4041),
    ("Interlaken", 46.6863, 7.8632),
    ("Zermatt", 46.0207, 7.7491),
    ("Lucerne", 47.0502, 8.3093),
    ("Bruges", 51.2093, 3.2247),
    ("Antwerp", 51.2194, 4.4025),
    ("Rotterdam", 51.9244, 4.4777),
    ("Cologne", 50.9375, 6.9603),
    ("Frankfurt", 50.1109, 8.6821),
    ("Dresden", 51.0504, 13.7373),
    ("Heidelberg", 49.3988, 8.6724),
    ("Strasbourg", 48.5734, 7.7521),
    ("Bordeaux", 44.8378, -0.5792),
    ("Toulouse", 43.6047, 1.4442),
    ("Valencia", 39.4699, -0.3763),
    ("Granada", 37.1773, -3.5986),
    ("Bilbao", 43.2630, -2.9350),
    ("Palma", 39.5696, 2.6502),
    ("Madeira", 32.6669, -16.9241),
    ("Tenerife", 28.2916, -16.6291),
    ("Bologna", 44.4949, 11.3426),
    ("Turin", 45.0703, 7.6869),
    ("Verona", 45.4384, 10.9916),
    ("Palermo", 38.1157, 13.3615),
    ("Amalfi", 40.6340, 14.6027),
    ("Valletta", 35.8989, 14.5146),
    ("Split", 43.5081, 16.4402),
    ("Kotor", 42.4247, 18.7712),
    ("Bergen", 60.3913, 5.3221),
    ("Tromso", 69.6492, 18.9553),
    ("Gothenburg", 57.7089, 11.9746),
    ("Tallinn", 59.4370, 24.7536),
    ("Riga", 56.9496, 24.1052),
    ("Vilnius", 54.6872, 25.2797),
    ("Cardiff", 51.4816, -3.1791),
    ("Glasgow", 55.8642, -4.2518),
    ("Bath", 51.3758, -2.3599),
    ("Oxford", 51.7520, -1.2577),
    ("Liverpool", 53.4084, -2.9916),
    ("Belfast", 54.5973, -5.9301),
    ("Galway", 53.2707, -9.0568),
    ("Suva", -18.1248, 178.4501),
    ("Papeete", -17.5516, -149.5585),
    ("Nuuk", 64.1814, -51.6941),
    ("Longyearbyen", 78.2232, 15.6267),
];
